"""Interactions and their history (issue 15): vault/interactions/tables.py.

Revision ID: v0012
Revises: v0011
"""

import sqlalchemy as sa
from alembic import op

revision = "v0012"
down_revision = "v0011"


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("citizen_id", sa.String(36), nullable=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("area", sa.String(32), nullable=True),
        sa.Column("home", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("created_s", sa.BigInteger(), nullable=False),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
        sa.Column("acknowledged_s", sa.BigInteger(), nullable=True),
        sa.Column("in_progress_s", sa.BigInteger(), nullable=True),
        sa.Column("resolved_s", sa.BigInteger(), nullable=True),
        sa.Column("closed_s", sa.BigInteger(), nullable=True),
        sa.Column("ack_due_s", sa.BigInteger(), nullable=False),
        sa.Column("resolve_due_s", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("pii_found", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_interactions_agency", "interactions", ["agency", "created_s"])
    op.create_index("ix_interactions_agency_status", "interactions", ["agency", "status", "resolve_due_s"])
    op.create_index("ix_interactions_citizen", "interactions", ["citizen_id", "created_s"])
    op.create_table(
        "interaction_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("interaction_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("by_role", sa.String(32), nullable=False),
        sa.Column("by_agency", sa.String(64), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ux_interaction_events_item", "interaction_events", ["interaction_id", "seq"], unique=True)


def downgrade() -> None:
    op.drop_table("interaction_events")
    op.drop_table("interactions")
