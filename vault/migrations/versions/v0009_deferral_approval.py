"""Deferrals need a second person: requests (pending until a compliance officer approves) and the
events each covers, replacing `audit_deferrals` (one caseworker alone hid events; issue 19, finding 6).

Deferrals made before this revision had no approver and a free-text basis. They become *pending*
requests (id ``legacy-<seq of their audit.defer event>``): they stop hiding anything, and the
compliance console lists them (``deferral-pending``) to be rejected and, where an investigation
still needs it, requested again under a registered basis. Downgrading restores the old table with
the approved deferrals only (pending and rejected ones hid nothing).

Revision ID: v0009
Revises: v0008
"""

import sqlalchemy as sa
from alembic import op

revision = "v0009"
down_revision = "v0008"


def upgrade() -> None:
    op.create_table(
        "audit_deferral_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("legal_basis", sa.String(300), nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("requested_at", sa.String(32), nullable=False),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", sa.String(32), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
    )
    op.create_index("ix_audit_deferral_requests_status", "audit_deferral_requests", ["status", "until"])
    op.create_table(
        "audit_deferred_events",
        sa.Column("deferral_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_audit_deferred_events_citizen", "audit_deferred_events", ["citizen_id", "seq"])
    op.create_index("ix_audit_deferred_events_seq", "audit_deferred_events", ["seq"])
    op.execute(
        "INSERT INTO audit_deferral_requests (id, agency, legal_basis, until, status, requested_by, requested_at, "
        "decided_by, decided_at, events) "
        "SELECT 'legacy-' || CAST(d.recorded_by AS VARCHAR(20)), MIN(d.agency), MIN(d.legal_basis), MIN(d.until), "
        "'pending', "
        "COALESCE(MIN(e.actor), 'unknown'), COALESCE(MIN(e.ts), MIN(d.until)), NULL, NULL, "
        "SUM(CASE WHEN d.seq <> d.recorded_by THEN 1 ELSE 0 END) "
        "FROM audit_deferrals d LEFT JOIN audit_events e ON e.seq = d.recorded_by GROUP BY d.recorded_by"
    )
    op.execute(
        "INSERT INTO audit_deferred_events (deferral_id, seq, citizen_id) "
        "SELECT 'legacy-' || CAST(d.recorded_by AS VARCHAR(20)), d.seq, d.citizen_id FROM audit_deferrals d"
    )
    op.drop_table("audit_deferrals")


def downgrade() -> None:
    op.create_table(
        "audit_deferrals",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("legal_basis", sa.String(300), nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_audit_deferrals_citizen_id", "audit_deferrals", ["citizen_id"])
    # An event is in at most one approved deferral whose date has not passed; MAX keeps one row per
    # event when an ended deferral and a later one both named it.
    op.execute(
        "INSERT INTO audit_deferrals (seq, citizen_id, agency, legal_basis, until, recorded_by) "
        "SELECT x.seq, MIN(x.citizen_id), MIN(r.agency), MIN(r.legal_basis), MAX(r.until), x.seq "
        "FROM audit_deferred_events x JOIN audit_deferral_requests r ON r.id = x.deferral_id "
        "WHERE r.status = 'approved' GROUP BY x.seq"
    )
    op.drop_table("audit_deferred_events")
    op.drop_table("audit_deferral_requests")
