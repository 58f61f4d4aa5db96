"""Purposes, consents (current state and append-only versions with receipts), grants.

Revision ID: v0004
Revises: v0003
"""

import sqlalchemy as sa
from alembic import op

revision = "v0004"
down_revision = "v0003"


def upgrade() -> None:
    op.create_table(
        "purposes",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(32), nullable=False),
        sa.Column("statute", sa.String(300), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("agencies", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_consents_citizen", "consents", ["citizen_id", "agency", "purpose"])
    op.create_table(
        "consent_versions",
        sa.Column("consent_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(100), nullable=True),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("case_ref", sa.String(100), nullable=True),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("citizens", sa.Integer(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=True),
    )
    op.create_index("ix_grants_agency", "grants", ["agency"])
    op.create_index("ix_grants_purpose", "grants", ["purpose"])
    op.create_table(
        "grant_citizens",
        sa.Column("grant_id", sa.String(36), primary_key=True),
        sa.Column("citizen_id", sa.String(36), primary_key=True),
        sa.Column("consent_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_grant_citizens_citizen", "grant_citizens", ["citizen_id"])
    op.create_index("ix_grant_citizens_consent", "grant_citizens", ["consent_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER consent_versions_append_only BEFORE UPDATE OR DELETE ON consent_versions "
            "FOR EACH ROW EXECUTE FUNCTION cv_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consent_versions_no_{verb.lower()} BEFORE {verb} ON consent_versions "
                "BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END"
            )


def downgrade() -> None:
    for table in ("grant_citizens", "grants", "consent_versions", "consents", "purposes"):
        op.drop_table(table)
