"""Citizens' rights requests (issue 17): requests, their history and messages, restrictions in force.

Revision ID: v0015
Revises: v0014
"""

import sqlalchemy as sa
from alembic import op

revision = "v0015"
down_revision = "v0014"


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(400), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_at", sa.String(32), nullable=False),
        sa.Column("due_at", sa.String(32), nullable=False),
        sa.Column("extensions", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(256), nullable=True),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("proposed", sa.LargeBinary(), nullable=True),
        sa.Column("dek_version", sa.Integer(), nullable=True),
    )
    op.create_index("ix_rights_requests_citizen", "rights_requests", ["citizen_id", "kind", "status"])
    op.create_index("ix_rights_requests_agency", "rights_requests", ["agency", "status", "due_at"])
    op.create_index("ix_rights_requests_due", "rights_requests", ["status", "due_at"])
    op.create_table(
        "rights_request_history",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
    )
    op.create_table(
        "rights_request_messages",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("author_role", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("dek_version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "processing_restrictions",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("since", sa.String(32), nullable=False),
        sa.Column("lifted_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_processing_restrictions_citizen", "processing_restrictions", ["citizen_id", "purpose"])


def downgrade() -> None:
    op.drop_table("processing_restrictions")
    op.drop_table("rights_request_messages")
    op.drop_table("rights_request_history")
    op.drop_table("rights_requests")
