"""Representation (issue 17): relations between a represented citizen and a representative, and
the web session's current choice of whom it acts for (re-checked on every request).

Revision ID: v0016
Revises: v0015
"""

import sqlalchemy as sa
from alembic import op

revision = "v0016"
down_revision = "v0015"


def upgrade() -> None:
    op.create_table(
        "representations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("represented_id", sa.String(36), nullable=False),
        sa.Column("representative_type", sa.String(16), nullable=False),
        sa.Column("representative_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("valid_from", sa.String(32), nullable=False),
        sa.Column("valid_until", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recorded_by", sa.String(256), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("ended_by", sa.String(256), nullable=True),
        sa.Column("ended_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_representations_represented", "representations", ["represented_id"])
    op.create_index("ix_representations_representative", "representations", ["representative_id"])
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("acting_for", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("acting_for")
    op.drop_table("representations")
