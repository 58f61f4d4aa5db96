"""Insights (issue 15): rollups of interaction_facts, and the per-analyst privacy ledger (vault/insights/tables.py).

Revision ID: v0014
Revises: v0013
"""

import sqlalchemy as sa
from alembic import op

revision = "v0014"
down_revision = "v0013"

EDGES = 13  # vault/insights/tables.py: len(EDGES); one more bucket holds the rest
MEASURES = (
    "n",
    "ack_ok",
    "ack_late",
    "res_ok",
    "res_late",
    "rated",
    "rating_sum",
    *(f"a{i}" for i in range(EDGES + 1)),
    *(f"r{i}" for i in range(EDGES + 1)),
)


def _rollup(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column(period, sa.Integer(), primary_key=True),
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("service_code", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("area", sa.String(32), primary_key=True),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in MEASURES),
    )


def upgrade() -> None:
    _rollup("insight_daily", "day")
    _rollup("insight_monthly", "month")
    op.create_table(
        "insight_budget",
        sa.Column("subject", sa.String(256), primary_key=True),
        sa.Column("period_start", sa.BigInteger(), primary_key=True),
        sa.Column("spent", sa.Float(), nullable=False),
    )
    op.create_table(
        "insight_releases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("created_s", sa.BigInteger(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
    )
    op.create_index("ix_insight_releases_subject", "insight_releases", ["subject", "created_s"])
    op.create_table(
        "insight_refresh",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("refreshed_s", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for name in ("insight_refresh", "insight_releases", "insight_budget", "insight_monthly", "insight_daily"):
        op.drop_table(name)
