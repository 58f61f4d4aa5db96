"""Tables of the data store. No column ever holds a plaintext field value."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

metadata = MetaData()

# One row per citizen. `record` holds every field, each sealed separately under the citizen's DEK
# (vault/fieldcipher.py); `provenance` is JSON {field: [source agency, ISO time, hold basis|null]}:
# field names, agency codes and times only, never values.
citizens = Table(
    "citizens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("status", String(16), nullable=False),  # active | erased
    Column("dek_version", Integer, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=True),
)

# Blind index: HMAC digests of normalised searchable values. One B-tree only, for insert speed:
# `tiebreak` is empty for unique fields (so a second citizen with the same value violates the
# primary key: uniqueness enforced by the database, race-free) and the citizen id otherwise.
blind_index = Table(
    "blind_index",
    metadata,
    Column("field", String(64), primary_key=True),
    Column("digest", LargeBinary(32), primary_key=True),
    Column("tiebreak", LargeBinary(16), primary_key=True),
    Column("citizen_id", Uuid, nullable=False),
    sqlite_with_rowid=False,
)

import_runs = Table(
    "import_runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("source_name", String(500), nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("lines_done", Integer, nullable=False),
    Column("batches_done", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running | done
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ux_import_runs_source", "source_sha256", "agency", unique=True),
)

# Registry: agencies, their API clients (secrets stored as keyed hashes), role assignments.
agencies = Table(
    "agencies",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", DateTime(timezone=True), nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("agency", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending-approval | active | revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Separation of duties (docs/registry.md): who created the client, who set its current secret
    # (and so holds it), and who approved it; none of them may be the same person.
    Column("created_by", String(256), nullable=True),
    Column("secret_set_by", String(256), nullable=True),
    Column("approved_by", String(256), nullable=True),
    Column("secret_expires_at", DateTime(timezone=True), nullable=True),  # NULL counts as expired
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("subject", String(256), primary_key=True),
    Column("agency", String(64), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
