"""Runs of the console's "verify now" with their progress (issue 14; vault/audit/verify_runs.py).

Revision ID: v0017
Revises: v0016
"""

import sqlalchemy as sa
from alembic import op

revision = "v0017"
down_revision = "v0016"


def upgrade() -> None:
    op.create_table(
        "audit_verify_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checked", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("result", sa.String(300), nullable=True),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_audit_verify_runs_status", "audit_verify_runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("audit_verify_runs")
