"""Grant tables. A grant names its agency, purpose, fields, basis, limits; its citizens are rows of their own."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from vault.models import metadata

grants = Table(
    "grants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency", String(64), nullable=False, index=True),
    Column("purpose", String(64), nullable=False, index=True),
    Column("fields", Text, nullable=False),  # JSON list of field names
    Column("lawful_basis", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending | active | revoked | expired | exhausted
    Column("status_reason", String(100), nullable=True),
    Column("expires_at", String(32), nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("case_ref", String(100), nullable=True),
    Column("requested_by", String(256), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("citizens", Integer, nullable=False),
    Column("jws", Text, nullable=True),
)

grant_citizens = Table(
    "grant_citizens",
    metadata,
    Column("grant_id", String(36), primary_key=True),
    Column("citizen_id", String(36), primary_key=True),
    Column("consent_id", String(36), nullable=True),
    Index("ix_grant_citizens_citizen", "citizen_id"),
    Index("ix_grant_citizens_consent", "consent_id"),
)
