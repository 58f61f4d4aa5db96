"""Audit events keyed by SQLite's rowid: `seq` becomes INTEGER PRIMARY KEY on SQLite.

A BIGINT primary key is not SQLite's rowid, so every event was written to the table and to a
separate unique index on `seq`. As the rowid, `seq` orders the table itself: one B-tree fewer per
append (bulk grant reads write one event per citizen) and the verifier's walk reads the table in
order. PostgreSQL is unchanged. The table is rebuilt with the same columns, indexes and
append-only triggers; events, hashes and checkpoints are copied as they are.

Revision ID: v0006
Revises: v0005
"""

from alembic import op

revision = "v0006"
down_revision = "v0005"

COLUMNS = """
    ts VARCHAR(32) NOT NULL,
    actor VARCHAR(256) NOT NULL,
    role VARCHAR(32) NOT NULL,
    agency VARCHAR(64) NOT NULL,
    action VARCHAR(64) NOT NULL,
    citizen_id VARCHAR(36),
    fields TEXT NOT NULL,
    purpose VARCHAR(64),
    grant_id VARCHAR(64),
    outcome VARCHAR(16) NOT NULL,
    reason VARCHAR(300),
    request_id VARCHAR(64),
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
"""
INDEXES = (("ix_audit_citizen", "citizen_id"), ("ix_audit_agency", "agency"), ("ix_audit_actor", "actor"))


def _rebuild(seq_type: str) -> None:
    op.execute(f"CREATE TABLE audit_events_rebuilt (seq {seq_type} NOT NULL PRIMARY KEY,{COLUMNS})")
    op.execute("INSERT INTO audit_events_rebuilt SELECT * FROM audit_events ORDER BY seq")
    op.execute("DROP TABLE audit_events")  # its indexes and triggers go with it
    op.execute("ALTER TABLE audit_events_rebuilt RENAME TO audit_events")
    for name, column in INDEXES:
        op.execute(f"CREATE INDEX {name} ON audit_events ({column}, seq)")
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("INTEGER")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("BIGINT")
