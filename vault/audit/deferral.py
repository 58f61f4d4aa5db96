"""Deferred disclosure: an agency hides some of its accesses from a citizen's view until a date.

For an ongoing investigation an agency may, with a legal basis and an end date, defer showing the
citizen particular events about them. The events stay in the log (compliance officers see them);
only the citizen's access log omits them until the date passes. The deferral is itself an audit
event, and that event is deferred with the others, or it would tip the citizen off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from vault.audit.log import Actor, AuditLog, Event, iso
from vault.audit.tables import audit_deferrals, audit_events
from vault.errors import Conflict, NotFound, ValidationFailed

MAX_DEFERRAL = timedelta(days=3 * 365)
MAX_EVENTS = 1000


def defer(
    audit: AuditLog, actor: Actor, seqs: Sequence[int], legal_basis: str, until: datetime, now: datetime | None = None
) -> int:
    """Defer disclosure of the actor's agency's events ``seqs`` until ``until``; returns the deferral event's seq."""
    now = now or datetime.now(UTC)
    basis = legal_basis.strip()
    if not basis or len(basis) > 300 or not basis.isprintable():
        raise ValidationFailed({"legal_basis": "1-300 printable characters naming the legal basis"})
    if until.tzinfo is None:
        raise ValidationFailed({"until": "give a time zone (e.g. 2027-06-30T00:00:00Z)"})
    if not now < until <= now + MAX_DEFERRAL:
        raise ValidationFailed({"until": "must be in the future and at most three years ahead"})
    wanted = sorted(set(seqs))
    if not wanted or len(wanted) > MAX_EVENTS:
        raise ValidationFailed({"events": f"1-{MAX_EVENTS} event sequence numbers"})
    with audit.transaction() as conn:
        rows = conn.execute(
            select(audit_events.c.seq, audit_events.c.citizen_id, audit_events.c.agency).where(
                audit_events.c.seq.in_(wanted)
            )
        ).all()
        # Another agency's events look exactly like absent ones: no probing of who did what.
        mine = {int(r.seq): r.citizen_id for r in rows if r.agency == actor.agency and r.citizen_id}
        missing = [s for s in wanted if s not in mine]
        if missing:
            raise NotFound(f"no events of your agency about a citizen with sequence numbers {missing[:10]}")
        taken = conn.scalars(select(audit_deferrals.c.seq).where(audit_deferrals.c.seq.in_(wanted))).all()
        if taken:
            raise Conflict("events", f"already deferred: {sorted(map(int, taken))[:10]}")
        citizens = sorted(set(mine.values()))
        recorded = audit.append(
            conn,
            actor,
            [Event("audit.defer", citizen_id=c, reason=f"until {iso(until)[:10]}: {basis}"[:300]) for c in citizens],
        )
        own = dict(zip(citizens, recorded, strict=True))
        rows_out = [
            {
                "seq": s,
                "citizen_id": c,
                "agency": actor.agency,
                "legal_basis": basis,
                "until": iso(until),
                "recorded_by": own[c],
            }
            for s, c in [*mine.items(), *((own[c], c) for c in citizens)]
        ]
        conn.execute(insert(audit_deferrals), rows_out)
    return recorded[0]
