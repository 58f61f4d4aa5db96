"""Audit tables. Events carry ids, names and codes, never a field value, token or secret."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from vault.models import metadata

# Append-only: database triggers (migration v0003) refuse UPDATE and DELETE, and the product
# has no code path that issues either. `ts` is ISO 8601 UTC text (…Z), so it sorts and filters
# identically on SQLite and PostgreSQL and hashes exactly as stored.
audit_events = Table(
    "audit_events",
    metadata,
    # On SQLite, INTEGER PRIMARY KEY makes `seq` the rowid: no separate index to write (v0006).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("role", String(32), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("citizen_id", String(36), nullable=True),
    Column("fields", Text, nullable=False),  # JSON list of field names
    Column("purpose", String(64), nullable=True),
    Column("grant_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),  # allowed | denied | failed
    Column("reason", String(300), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Index("ix_audit_citizen", "citizen_id", "seq"),
    Index("ix_audit_agency", "agency", "seq"),
    Index("ix_audit_actor", "actor", "seq"),
)

# One row (id = 1): the chain's head, MACed under a key from the key provider, so a truncated or
# rewritten tail after the last checkpoint is detected. Updating it serialises appends: no forks,
# no gaps, under any number of worker processes.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Column("head_hash", LargeBinary(32), nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
    Column("cp_count", BigInteger, nullable=False),
    Column("cp_ts", String(32), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("count", BigInteger, primary_key=True, autoincrement=False),
    Column("head_hash", LargeBinary(32), nullable=False),
    Column("ts", String(32), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)

# Deferred disclosure (docs/audit.md): a caseworker's request, pending until a compliance officer
# other than the requester approves or rejects it. Only an approved request whose `until` has not
# passed hides its events from the citizen (migration v0009 replaced the single-person
# `audit_deferrals`).
audit_deferral_requests = Table(
    "audit_deferral_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency", String(64), nullable=False),
    Column("legal_basis", String(300), nullable=False),  # a code of policies/deferral-bases.yaml
    Column("until", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", String(32), nullable=False),
    Column("decided_by", String(256), nullable=True),
    Column("decided_at", String(32), nullable=True),
    Column("events", Integer, nullable=False),  # how many events the requester named
    Index("ix_audit_deferral_requests_status", "status", "until"),
)

# The events a request covers: those named, and (once approved) the deferral's own audit events.
audit_deferred_events = Table(
    "audit_deferred_events",
    metadata,
    Column("deferral_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("citizen_id", String(36), nullable=False),
    Index("ix_audit_deferred_events_citizen", "citizen_id", "seq"),
    Index("ix_audit_deferred_events_seq", "seq"),
)
