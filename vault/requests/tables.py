"""Rights-request tables (migration v0015). Free text (messages, proposed values) is stored only
encrypted under the citizen's data key; everything in clear here is ids, codes and field names."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, Text

from vault.models import metadata

rights_requests = Table(
    "rights_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("citizen_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),  # access | rectification | erasure | restriction | objection
    Column("scope", String(400), nullable=False),  # fields or purpose, canonical: what "the same request" means
    Column("agency", String(64), nullable=False),  # the agency the request is routed to
    Column("status", String(16), nullable=False),
    Column("submitted_at", String(32), nullable=False),
    Column("due_at", String(32), nullable=False),
    Column("extensions", Integer, nullable=False),  # months added to the one-month deadline (0-2)
    Column("assignee", String(256), nullable=True),
    Column("updated_at", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: names and codes only (fields, purposes, outcome)
    Column("proposed", LargeBinary, nullable=True),  # rectification: sealed record of the proposed values
    Column("dek_version", Integer, nullable=True),  # the citizen's DEK version that sealed ``proposed``
    Index("ix_rights_requests_citizen", "citizen_id", "kind", "status"),
    Index("ix_rights_requests_agency", "agency", "status", "due_at"),
    Index("ix_rights_requests_due", "status", "due_at"),
)

# Every transition, append-only: status, time and actor.
rights_request_history = Table(
    "rights_request_history",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("event", String(32), nullable=False),  # submitted, verified, assigned, extended, approved, ...
    Column("at", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("actor_role", String(32), nullable=False),
)

# Messages between the citizen and the officers: personal data, so sealed under the citizen's DEK.
rights_request_messages = Table(
    "rights_request_messages",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", String(32), nullable=False),
    Column("author_role", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("dek_version", Integer, nullable=False),
)

# Restrictions of processing in force (a completed restriction or objection) until lifted.
processing_restrictions = Table(
    "processing_restrictions",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("citizen_id", String(36), nullable=False),
    Column("since", String(32), nullable=False),
    Column("lifted_at", String(32), nullable=True),
    Index("ix_processing_restrictions_citizen", "citizen_id", "purpose"),
)
