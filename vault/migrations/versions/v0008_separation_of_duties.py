"""Clients: who created, re-keyed and approved them, and when their secret expires (issue 19).

Existing clients were created before approvals existed and stay active; their secrets get the
default lifetime (90 days) from the time of the upgrade, so that operators have that long to rotate
them instead of every client failing at once. A NULL expiry is treated as expired by the code.

Revision ID: v0008
Revises: v0007
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "v0008"
down_revision = "v0007"

UPGRADE_LIFETIME = timedelta(days=90)
COLUMNS = ("created_by", "secret_set_by", "approved_by")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("clients", sa.Column(name, sa.String(256), nullable=True))
    op.add_column("clients", sa.Column("secret_expires_at", sa.DateTime(timezone=True), nullable=True))
    clients = sa.table("clients", sa.column("secret_expires_at", sa.DateTime(timezone=True)))
    op.execute(clients.update().values(secret_expires_at=datetime.now(UTC) + UPGRADE_LIFETIME))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for name in (*COLUMNS, "secret_expires_at"):
            batch.drop_column(name)
