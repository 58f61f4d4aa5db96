""" "Verify now" as a run that anyone can follow (issue 14): its progress is a row, not memory.

A compliance officer's "verify now" re-walks the whole chain, which takes a while on a large log.
The console starts the walk beside the request and sends the officer to a page that follows it.
Progress lives in ``audit_verify_runs`` so the page can be served by any worker process; a run
whose walker died (process killed) stops advancing and reads as *interrupted* once its heartbeat
is older than :data:`STALE`. The outcome is recorded exactly as ``GET /v1/audit/verify`` records
it, by :func:`verify_and_record`, the one implementation both faces call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Column, Index, String, Table, select, update
from sqlalchemy.engine import Engine

from vault.audit.log import Actor, AuditLog, Event, iso
from vault.audit.verify import Progress, Report, verify_database
from vault.models import metadata

# A running walk writes its progress at least every few seconds (every 10,000 events); silence
# this long means its process is gone.
STALE = timedelta(minutes=2)

audit_verify_runs = Table(
    "audit_verify_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("requested_by", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("checked", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("result", String(300), nullable=True),  # the audit.verify event's reason, or the failure's type
    Column("event_seq", BigInteger, nullable=True),  # the audit.verify event that recorded the result
    Index("ix_audit_verify_runs_status", "status", "updated_at"),
)


@dataclass(frozen=True)
class Run:
    """One "verify now", as the console shows it."""

    id: str
    requested_by: str
    status: str
    checked: int
    total: int
    started_at: str
    updated_at: str
    result: str | None
    event_seq: int | None

    def state(self, now: datetime) -> str:
        """``running``, ``interrupted`` (its walker stopped reporting), ``done`` or ``failed``."""
        if self.status == "running" and self.updated_at < iso(now - STALE):
            return "interrupted"
        return self.status


def verify_and_record(log: AuditLog, who: Actor, progress: Progress | None = None) -> tuple[Report, int]:
    """Re-walk the whole chain, then record ``audit.verify`` with the result: (report, its event's seq)."""
    report = verify_database(log, progress)
    finding = report.finding
    reason = "intact" if finding is None else f"{finding.kind} at {finding.seq}"
    (seq,) = log.record(who, Event("audit.verify", reason=reason))
    return report, seq


def start(engine: Engine, requested_by: str, now: datetime) -> tuple[Run, bool]:
    """A new run for ``requested_by``, or the one of theirs still running: (run, whether it is new).

    One walk at a time per person: pressing the button again follows the walk already under way."""
    with engine.begin() as conn:
        running = conn.execute(
            select(audit_verify_runs).where(
                audit_verify_runs.c.requested_by == requested_by,
                audit_verify_runs.c.status == "running",
                audit_verify_runs.c.updated_at >= iso(now - STALE),
            )
        ).first()
        if running is not None:
            return Run(**running._mapping), False
        row = {
            "id": str(uuid.uuid4()),
            "requested_by": requested_by,
            "status": "running",
            "checked": 0,
            "total": 0,
            "started_at": iso(now),
            "updated_at": iso(now),
            "result": None,
            "event_seq": None,
        }
        conn.execute(audit_verify_runs.insert().values(**row))
    return Run(**row), True  # type: ignore[arg-type]


def advance(engine: Engine, run_id: str, checked: int, total: int, now: datetime) -> None:
    """Record how far the walk has got (also its heartbeat)."""
    with engine.begin() as conn:
        conn.execute(
            update(audit_verify_runs)
            .where(audit_verify_runs.c.id == run_id, audit_verify_runs.c.status == "running")
            .values(checked=checked, total=total, updated_at=iso(now))
        )


def finish(engine: Engine, run_id: str, now: datetime, *, result: str, event_seq: int | None) -> None:
    """The walk ended: ``done`` with the recorded event, or ``failed`` (no event) with the error's type."""
    with engine.begin() as conn:
        conn.execute(
            update(audit_verify_runs)
            .where(audit_verify_runs.c.id == run_id)
            .values(
                status="done" if event_seq is not None else "failed",
                result=result[:300],
                event_seq=event_seq,
                updated_at=iso(now),
            )
        )


def get(engine: Engine, run_id: str) -> Run | None:
    """The run, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(audit_verify_runs).where(audit_verify_runs.c.id == run_id)).first()
    return None if row is None else Run(**row._mapping)
