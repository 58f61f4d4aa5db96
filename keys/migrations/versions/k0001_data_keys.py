"""Key store: wrapped data keys.

Revision ID: k0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "k0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("owner_id", sa.Uuid(), primary_key=True),
        sa.Column("slot", sa.String(1), primary_key=True),
        sa.Column("dek_version", sa.Integer(), primary_key=True),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_data_keys_kek_version", "data_keys", ["kek_version"])


def downgrade() -> None:
    op.drop_table("data_keys")
