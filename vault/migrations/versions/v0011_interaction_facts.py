"""Anonymous interaction statistics (issue 15): the table insights read (vault/interactions/facts.py).

Revision ID: v0011
Revises: v0010
"""

import sqlalchemy as sa
from alembic import op

revision = "v0011"
down_revision = "v0010"


def upgrade() -> None:
    op.create_table(
        "interaction_facts",
        sa.Column("interaction_id", sa.String(36), primary_key=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("area", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_s", sa.BigInteger(), nullable=False),
        sa.Column("acknowledged_s", sa.BigInteger(), nullable=True),
        sa.Column("resolved_s", sa.BigInteger(), nullable=True),
        sa.Column("closed_s", sa.BigInteger(), nullable=True),
        sa.Column("ack_target_s", sa.Integer(), nullable=True),
        sa.Column("resolve_target_s", sa.Integer(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
    )
    op.create_index("ix_interaction_facts_created", "interaction_facts", ["created_s"])
    op.create_index("ix_interaction_facts_agency", "interaction_facts", ["agency", "created_s"])
    op.create_index("ix_interaction_facts_service", "interaction_facts", ["service_code", "created_s"])


def downgrade() -> None:
    op.drop_table("interaction_facts")
