"""Tables of the data store. No column ever holds a plaintext field value."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    text,
)

metadata = MetaData()

citizens = Table(
    "citizens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("status", String(16), nullable=False),  # active | erased
    Column("dek_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=True),
)

profile_fields = Table(
    "profile_fields",
    metadata,
    Column("citizen_id", Uuid, ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("source_agency", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("hold_basis", String(500), nullable=True),
)

blind_index = Table(
    "blind_index",
    metadata,
    Column("field", String(64), primary_key=True),
    Column("digest", LargeBinary(32), primary_key=True),
    Column("citizen_id", Uuid, ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
    Column("uniq", Boolean, nullable=False),
    Index("ix_blind_index_citizen", "citizen_id"),
    Index(
        "ux_blind_index_unique",
        "field",
        "digest",
        unique=True,
        sqlite_where=text("uniq = 1"),
        postgresql_where=text("uniq"),
    ),
)

import_runs = Table(
    "import_runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("source_name", String(500), nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("lines_done", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running | done
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ux_import_runs_source", "source_sha256", "agency", unique=True),
)
