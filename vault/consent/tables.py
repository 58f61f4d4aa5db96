"""Consent tables and the current state of a consent as callers see it.

``consents`` holds the current state, one row per citizen, agency and purpose (one chain of
versions, kept through withdrawals); ``consent_versions`` every version with its signed receipt,
append-only (triggers in migrations v0004).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text

from vault.models import metadata

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("citizen_id", String(36), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("categories", Text, nullable=False),  # JSON list
    Column("status", String(16), nullable=False),  # active | withdrawn
    Column("expires_at", String(32), nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("purpose_version", Integer, nullable=False, server_default="1"),
    Index("ix_consents_citizen", "citizen_id", "agency", "purpose"),
)

consent_versions = Table(
    "consent_versions",
    metadata,
    Column("consent_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("categories", Text, nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("recorded_at", String(32), nullable=False),
    Column("receipt", Text, nullable=False),  # compact JWS
    Column("purpose_version", Integer, nullable=False, server_default="1"),
)


@dataclass(frozen=True)
class Consent:
    """The current state of one consent. ``status`` is derived: ``active``, ``withdrawn``,
    ``expired`` (``expires_at`` passed) or ``renewal-required`` (given for an older version of the
    purpose than its current one: it covers nothing until the citizen confirms it again)."""

    id: str
    citizen_id: str
    agency: str
    purpose: str
    categories: list[str]
    status: str
    expires_at: str | None
    version: int
    updated_at: str
    purpose_version: int
    current_purpose_version: int

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def consent_from_row(r: Any, now: str, purpose_version: int) -> Consent:
    """A Consent from a ``consents`` row, its status derived at ``now`` against the purpose's
    current ``purpose_version``."""
    status = r.status
    if status == "active" and r.expires_at is not None and r.expires_at <= now:
        status = "expired"
    elif status == "active" and int(r.purpose_version) != purpose_version:
        status = "renewal-required"
    return Consent(
        r.id,
        r.citizen_id,
        r.agency,
        r.purpose,
        list(json.loads(r.categories)),
        status,
        r.expires_at,
        int(r.version),
        r.updated_at,
        int(r.purpose_version),
        purpose_version,
    )
