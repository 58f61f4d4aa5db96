"""Interaction tables (migration v0012). Codes, states and times in clear; every text, contact
detail, precise location, answer and attachment reference sealed in ``sealed`` (vault.interactions.sealing).

The anonymous statistics of each interaction live in ``interaction_facts`` (vault.interactions.facts).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, SmallInteger, String, Table, Text

from vault.models import metadata

interactions = Table(
    "interactions",
    metadata,
    Column("id", String(36), primary_key=True),
    # The linked citizen (their data key seals the texts), or None: anonymous (a key of its own).
    Column("citizen_id", String(36), nullable=True),
    Column("agency", String(64), nullable=False),
    Column("service_code", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("source", String(16), nullable=False),  # vault | open311
    Column("status", String(16), nullable=False),
    Column("area", String(32), nullable=True),  # coarse area code, the only location in clear
    Column("home", Boolean, nullable=False),  # the location identifies a home: never published
    Column("unit", String(64), nullable=True),
    Column("created_s", BigInteger, nullable=False),
    Column("updated_s", BigInteger, nullable=False),
    Column("acknowledged_s", BigInteger, nullable=True),
    Column("in_progress_s", BigInteger, nullable=True),
    Column("resolved_s", BigInteger, nullable=True),
    Column("closed_s", BigInteger, nullable=True),
    Column("ack_due_s", BigInteger, nullable=False),
    Column("resolve_due_s", BigInteger, nullable=False),
    Column("rating", SmallInteger, nullable=True),
    Column("pii_found", Text, nullable=False),  # JSON: entity types and counts found in the text, never values
    Column("sealed", LargeBinary, nullable=False),  # vault.fieldcipher record, slot "I"
    Index("ix_interactions_agency", "agency", "created_s"),
    Index("ix_interactions_agency_status", "agency", "status", "resolve_due_s"),
    Index("ix_interactions_citizen", "citizen_id", "created_s"),
)

interaction_events = Table(
    "interaction_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("interaction_id", String(36), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per interaction: the history's order
    Column("at", String(32), nullable=False),  # ISO 8601 UTC, microseconds (vault.audit.log.iso)
    Column("kind", String(16), nullable=False),  # created | status | note | assign | rating
    Column("status", String(16), nullable=True),  # the status after this event
    Column("unit", String(64), nullable=True),
    Column("by_role", String(32), nullable=False),
    Column("by_agency", String(64), nullable=False),
    Column("note", LargeBinary, nullable=True),  # sealed note and its redacted copy
    Index("ux_interaction_events_item", "interaction_id", "seq", unique=True),
)
