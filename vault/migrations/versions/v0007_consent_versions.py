"""Versioned purposes (issue 19): each material change of a purpose is a new version, kept in the
append-only ``purpose_versions``; every consent and consent version records the purpose version
the citizen agreed to. Existing purposes become version 1 (their current wording), and existing
consents and versions were given for it.

Revision ID: v0007
Revises: v0006
"""

import sqlalchemy as sa
from alembic import op

revision = "v0007"
down_revision = "v0006"


def upgrade() -> None:
    op.add_column("purposes", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "purpose_versions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(32), nullable=False),
        sa.Column("statute", sa.String(300), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )
    op.execute(
        "INSERT INTO purpose_versions (code, version, description, categories, lawful_basis, statute, "
        "retention_days, recorded_at) SELECT code, 1, description, categories, lawful_basis, statute, "
        "retention_days, created_at FROM purposes"
    )
    # Adding a column with a default rewrites no row through UPDATE: the append-only triggers of
    # consent_versions do not fire, and its history stays as it was.
    op.add_column("consents", sa.Column("purpose_version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("consent_versions", sa.Column("purpose_version", sa.Integer(), nullable=False, server_default="1"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER purpose_versions_append_only BEFORE UPDATE OR DELETE ON purpose_versions "
            "FOR EACH ROW EXECUTE FUNCTION cv_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER purpose_versions_no_{verb.lower()} BEFORE {verb} ON purpose_versions "
                "BEGIN SELECT RAISE(ABORT, 'purpose history is append-only'); END"
            )


def downgrade() -> None:
    op.drop_column("consent_versions", "purpose_version")
    op.drop_column("consents", "purpose_version")
    op.drop_table("purpose_versions")
    op.drop_column("purposes", "version")
