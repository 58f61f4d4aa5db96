"""Data store: citizens, encrypted profile fields, blind index, import runs.

Revision ID: v0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "v0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dek_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "profile_fields",
        sa.Column("citizen_id", sa.Uuid(), sa.ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("source_agency", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_basis", sa.String(500), nullable=True),
    )
    op.create_table(
        "blind_index",
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("citizen_id", sa.Uuid(), sa.ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("uniq", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_blind_index_citizen", "blind_index", ["citizen_id"])
    op.create_index(
        "ux_blind_index_unique",
        "blind_index",
        ["field", "digest"],
        unique=True,
        sqlite_where=sa.text("uniq = 1"),
        postgresql_where=sa.text("uniq"),
    )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source_name", sa.String(500), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("lines_done", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ux_import_runs_source", "import_runs", ["source_sha256", "agency"], unique=True)


def downgrade() -> None:
    op.drop_table("import_runs")
    op.drop_table("blind_index")
    op.drop_table("profile_fields")
    op.drop_table("citizens")
