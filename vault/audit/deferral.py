"""Deferred disclosure: an agency hides some of its accesses from a citizen's view until a date.

For an ongoing investigation an agency may defer showing the citizen particular events about them.
Nobody can do that alone (issue 19, finding 6):

* a caseworker *requests* it, naming events of their agency about citizens, a **registered legal
  basis** (``policies/deferral-bases.yaml``) and an end date no later than that basis allows;
  the request hides nothing;
* a **compliance officer other than the requester** (of the same agency, or of the operator)
  approves or rejects it; only an approved deferral whose date has not passed hides anything;
* it ends at its date on its own; pending, active, ending and recently ended deferrals are listed
  in the compliance flags (:func:`review_flags`) so each is reviewed when it ends.

The events stay in the log (compliance officers see them). Approving appends one ``audit.defer``
event per citizen, and those are deferred with the others, or they would tip the citizen off; the
request and a rejection are recorded without a citizen id (they hide nothing, and are no access to
anyone's data). The citizen's access log says only *that* some entries are deferred.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, and_, exists, insert, or_, select, update

from vault.audit.log import Actor, AuditLog, Event, iso
from vault.audit.review import Flag
from vault.audit.tables import audit_deferral_requests, audit_deferred_events, audit_events
from vault.errors import ConfigurationError, Conflict, NotFound, Refused, ValidationFailed

MAX_EVENTS = 1000
ENDING_SOON = timedelta(days=30)  # an active deferral this close to its end is flagged for review
LIVE = ("pending", "approved")
_requests, _deferred = audit_deferral_requests.c, audit_deferred_events.c


class Basis(BaseModel):
    """A registered legal basis for deferring disclosure."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    statute: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=500)
    max_days: int = Field(ge=1, le=1095)


class _BasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bases: list[Basis] = Field(min_length=1)


@functools.lru_cache(maxsize=4)
def _parse(path: Path, mtime_ns: int) -> dict[str, Basis]:
    try:
        parsed = _BasesFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"deferral bases {path.name}: {type(exc).__name__}") from None
    found = {b.code: b for b in parsed.bases}
    if len(found) != len(parsed.bases):
        raise ConfigurationError(f"deferral bases {path.name}: a code is registered twice")
    return found


def load_bases(path: Path) -> dict[str, Basis]:
    """The registered bases by code (re-read when the file changes); ConfigurationError when unusable."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise ConfigurationError(f"deferral bases {path.name}: missing") from None
    return _parse(path, mtime)


@dataclass(frozen=True)
class Deferral:
    """A deferral request and its decision; never a position in the audit log."""

    id: str
    agency: str
    legal_basis: str
    until: str
    status: str
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    events: int

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _row(r: Any) -> Deferral:
    return Deferral(
        r.id,
        r.agency,
        r.legal_basis,
        r.until,
        r.status,
        r.requested_by,
        r.requested_at,
        r.decided_by,
        r.decided_at,
        int(r.events),
    )


def _overlapping(conn: Connection, seqs: Sequence[int], now: datetime, besides: str | None = None) -> list[int]:
    query = (
        select(_deferred.seq)
        .join(audit_deferral_requests, _requests.id == _deferred.deferral_id)
        .where(_deferred.seq.in_(seqs), _requests.status.in_(LIVE), _requests.until > iso(now))
    )
    if besides is not None:
        query = query.where(_deferred.deferral_id != besides)
    return sorted({int(s) for s in conn.scalars(query)})


def request(
    audit: AuditLog,
    actor: Actor,
    seqs: Sequence[int],
    legal_basis: str,
    until: datetime,
    bases: dict[str, Basis],
    now: datetime | None = None,
) -> Deferral:
    """Ask to defer the actor's agency's events ``seqs`` until ``until``; pending until approved."""
    now = now or datetime.now(UTC)
    basis = bases.get(legal_basis)
    if basis is None:
        registered = ", ".join(sorted(bases))
        raise ValidationFailed({"legal_basis": f"not a registered basis; registered: {registered}"[:300]})
    if until.tzinfo is None:
        raise ValidationFailed({"until": "give a time zone (e.g. 2027-06-30T00:00:00Z)"})
    if not now < until <= now + timedelta(days=basis.max_days):
        raise ValidationFailed(
            {"until": f"must be in the future and at most {basis.max_days} days ahead ({basis.code})"}
        )
    wanted = sorted(set(seqs))
    if not wanted or len(wanted) > MAX_EVENTS:
        raise ValidationFailed({"events": f"1-{MAX_EVENTS} event sequence numbers"})
    deferral_id = str(uuid.uuid4())
    with audit.transaction() as conn:
        rows = conn.execute(
            select(audit_events.c.seq, audit_events.c.citizen_id, audit_events.c.agency).where(
                audit_events.c.seq.in_(wanted)
            )
        ).all()
        # Another agency's events look exactly like absent ones: no probing of who did what. Any actor
        # of the agency (its app too) may be named: the approver, not the requester, decides.
        mine = {int(r.seq): r.citizen_id for r in rows if r.agency == actor.agency and r.citizen_id}
        missing = [s for s in wanted if s not in mine]
        if missing:
            raise NotFound(f"no events of your agency about a citizen with sequence numbers {missing[:10]}")
        taken = _overlapping(conn, wanted, now)
        if taken:
            raise Conflict("events", f"already in a pending or active deferral: {taken[:10]}")
        citizens = len(set(mine.values()))
        conn.execute(
            insert(audit_deferral_requests).values(
                id=deferral_id,
                agency=actor.agency,
                legal_basis=basis.code,
                until=iso(until),
                status="pending",
                requested_by=actor.subject,
                requested_at=iso(now),
                events=len(wanted),
            )
        )
        conn.execute(
            insert(audit_deferred_events),
            [{"deferral_id": deferral_id, "seq": s, "citizen_id": c} for s, c in mine.items()],
        )
        reason = (
            f"deferral {deferral_id}: {len(wanted)} events, {citizens} citizens, {basis.code} until {iso(until)[:10]}"
        )
        audit.append(conn, actor, [Event("audit.defer-request", reason=reason)])
        found = conn.execute(select(audit_deferral_requests).where(_requests.id == deferral_id)).one()
    return _row(found)


def decide(
    audit: AuditLog,
    approver: Actor,
    deferral_id: str,
    approve: bool,
    scope: str | None,
    bases: dict[str, Basis],
    now: datetime | None = None,
) -> Deferral:
    """Approve or reject a pending request as a compliance officer of ``scope`` (None: every agency)."""
    try:
        return _decide(audit, approver, deferral_id, approve, scope, bases, now or datetime.now(UTC))
    except Refused as refused:
        # Like the registry's separation-of-duties refusals: audited in a transaction of its own
        # (the decision's rolled back) and shown in the compliance flags (duty-refused).
        what = f"{refused.reason}: deferral {deferral_id}"
        audit.record(approver, Event("audit.defer", outcome="denied", reason=what[:300]))
        raise


def _decide(
    audit: AuditLog,
    approver: Actor,
    deferral_id: str,
    approve: bool,
    scope: str | None,
    bases: dict[str, Basis],
    now: datetime,
) -> Deferral:
    with audit.transaction() as conn:
        found = conn.execute(select(audit_deferral_requests).where(_requests.id == deferral_id)).one_or_none()
        # Another agency's request looks exactly like an absent one.
        if found is None or (scope is not None and found.agency != scope):
            raise NotFound("no such deferral request")
        if found.status != "pending":
            raise Conflict("status", f"already {found.status}")
        if found.requested_by == approver.subject:
            raise Refused("approver-is-requester", "a deferral is approved by someone other than its requester")
        verdict = "approved" if approve else "rejected"
        if approve:
            basis = bases.get(found.legal_basis)
            if basis is None:
                raise Conflict("legal_basis", "is not (or no longer) registered: reject it and request again")
            if found.until <= iso(now):
                raise Conflict("until", "has passed: reject it and request again")
            seqs = list(conn.scalars(select(_deferred.seq).where(_deferred.deferral_id == deferral_id)))
            taken = _overlapping(conn, seqs, now, besides=deferral_id)
            if taken:
                raise Conflict("events", f"already in a pending or active deferral: {taken[:10]}")
        changed = conn.execute(
            update(audit_deferral_requests)
            .where(_requests.id == deferral_id, _requests.status == "pending")
            .values(status=verdict, decided_by=approver.subject, decided_at=iso(now))
        )
        if changed.rowcount != 1:  # decided by someone else since we read it
            raise Conflict("status", "decided meanwhile")
        reason = f"deferral {deferral_id} {verdict}: {found.legal_basis} until {found.until[:10]}, "
        reason += f"requested by {found.requested_by}"
        if approve:
            citizens = sorted(
                set(conn.scalars(select(_deferred.citizen_id).where(_deferred.deferral_id == deferral_id)))
            )
            recorded = audit.append(
                conn, approver, [Event("audit.defer", citizen_id=c, reason=reason[:300]) for c in citizens]
            )
            conn.execute(
                insert(audit_deferred_events),
                [
                    {"deferral_id": deferral_id, "seq": s, "citizen_id": c}
                    for s, c in zip(recorded, citizens, strict=True)
                ],
            )
        else:
            audit.append(conn, approver, [Event("audit.defer-reject", reason=reason[:300])])
        decided = conn.execute(select(audit_deferral_requests).where(_requests.id == deferral_id)).one()
    return _row(decided)


def pending(engine: Engine, agency: str | None) -> list[Deferral]:
    """Requests awaiting a decision, oldest first: ``agency``'s, or every agency's (None)."""
    query = select(audit_deferral_requests).where(_requests.status == "pending")
    if agency is not None:
        query = query.where(_requests.agency == agency)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query.order_by(_requests.requested_at, _requests.id))]


def has_deferred(engine: Engine, citizen_id: str, now: datetime) -> bool:
    """Whether an approved deferral still hides some events about this citizen (no count, no detail)."""
    query = select(
        exists().where(
            _deferred.citizen_id == citizen_id,
            _requests.id == _deferred.deferral_id,
            _requests.status == "approved",
            _requests.until > iso(now),
        )
    )
    with engine.connect() as conn:
        return bool(conn.scalar(query))


def review_flags(engine: Engine, since: datetime, until: datetime, now: datetime) -> list[Flag]:
    """Pending and active deferrals (ending ones marked), and those that ended in [since, until)."""
    query = (
        select(audit_deferral_requests)
        .where(
            or_(
                _requests.status == "pending",
                and_(_requests.status == "approved", _requests.until >= iso(since)),
            )
        )
        .order_by(_requests.until, _requests.id)
    )
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(query)]
    flags: list[Flag] = []
    for d in rows:
        what = f"deferral {d.id}: {d.events} events, {d.legal_basis} until {d.until[:10]}"
        if d.status == "pending":
            rule, detail = "deferral-pending", f"{what}, awaits approval by a compliance officer"
        elif d.until > iso(now + ENDING_SOON):
            rule, detail = "deferral-active", f"{what}, approved by {d.decided_by}"
        elif d.until > iso(now):
            rule, detail = "deferral-ending", f"{what}, approved by {d.decided_by}: review before it ends"
        elif d.until < iso(until):
            rule, detail = "deferral-ended", f"{what}, approved by {d.decided_by}: ended, review it"
        else:
            continue
        period = f"{d.requested_at[:10]}..{d.until[:10]}"
        flags.append(Flag(rule, d.requested_by, d.agency, period, d.events, 0.0, detail[:300]))
    return flags
