"""Audit log: events (append-only, enforced by triggers), head, signed checkpoints, deferrals.

Revision ID: v0003
Revises: v0002
"""

import sqlalchemy as sa
from alembic import op

revision = "v0003"
down_revision = "v0002"

APPEND_ONLY = ("audit_events", "audit_checkpoints")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("citizen_id", sa.String(36), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=True),
        sa.Column("grant_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_audit_citizen", "audit_events", ["citizen_id", "seq"])
    op.create_index("ix_audit_agency", "audit_events", ["agency", "seq"])
    op.create_index("ix_audit_actor", "audit_events", ["actor", "seq"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=False),
        sa.Column("cp_count", sa.BigInteger(), nullable=False),
        sa.Column("cp_ts", sa.String(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("count", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
    )
    op.create_table(
        "audit_deferrals",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("legal_basis", sa.String(300), nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_audit_deferrals_citizen_id", "audit_deferrals", ["citizen_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION cv_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$"
        )
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION cv_audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION cv_audit_append_only()"
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("audit_deferrals", "audit_checkpoints", "audit_head", "audit_events"):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION cv_audit_append_only()")
