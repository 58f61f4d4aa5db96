"""Web sessions (issue 14): server-side, the cookie's id stored only as its SHA-256 (vault/sessions.py).

Revision ID: v0010
Revises: v0009
"""

import sqlalchemy as sa
from alembic import op

revision = "v0010"
down_revision = "v0009"


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(256), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_seen_at", sa.String(32), nullable=False),
        sa.Column("ended_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_web_sessions_subject", "web_sessions", ["subject"])


def downgrade() -> None:
    op.drop_table("web_sessions")
