"""PII findings of free-text fields (issue #6): types, counts and scores only.

Revision ID: v0005
Revises: v0004
"""

import sqlalchemy as sa
from alembic import op

revision = "v0005"
down_revision = "v0004"


def upgrade() -> None:
    op.create_table(
        "pii_findings",
        sa.Column("citizen_id", sa.Uuid(), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pii_findings")
