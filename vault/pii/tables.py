"""PII findings of free-text fields: entity types, counts and best scores, never values or offsets."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, Text, Uuid

from vault.models import metadata

# One row per (citizen, free-text field), replaced at each write of the field, removed with it.
# `findings` is JSON {entity type: {"count": n, "max_score": s}} plus the action policy took.
pii_findings = Table(
    "pii_findings",
    metadata,
    Column("citizen_id", Uuid, primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("findings", Text, nullable=False),
    Column("scanned_at", DateTime(timezone=True), nullable=False),
)
