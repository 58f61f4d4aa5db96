"""Reading the audit log: filtered, cursor-paged events; a citizen's access log; reports; unusual access.

Reading never writes to the log's tables (only the log itself appends). Reviews are themselves
audited by the callers (``audit.read`` events), so the auditors leave a trail too.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, and_, func, not_, or_, select

from vault.audit.log import iso
from vault.audit.tables import audit_deferral_requests, audit_deferred_events, audit_events
from vault.purposes.service import purpose_versions, purposes

# Actions that read citizen data (what "who read my data" and the volume rules count).
READ_ACTIONS = ("citizens.read", "citizens.export", "citizens.lookup", "grants.read")
MAX_PAGE = 1000


@dataclass(frozen=True)
class EventFilter:
    """Filters for reviewing events; every one optional. Times are inclusive/exclusive bounds."""

    citizen_id: str | None = None
    agency: str | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    purpose: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def public(self) -> dict[str, str]:
        """The filter as given (for export headers)."""
        return {k: (iso(v) if isinstance(v, datetime) else str(v)) for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class StoredEvent:
    """One event as stored (hashes as hex)."""

    seq: int
    ts: str
    actor: str
    role: str
    agency: str
    action: str
    citizen_id: str | None
    fields: list[str]
    purpose: str | None
    grant_id: str | None
    outcome: str
    reason: str | None
    request_id: str | None
    prev_hash: str
    hash: str

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _stored(r: Any) -> StoredEvent:
    return StoredEvent(
        seq=int(r.seq),
        ts=r.ts,
        actor=r.actor,
        role=r.role,
        agency=r.agency,
        action=r.action,
        citizen_id=r.citizen_id,
        fields=list(json.loads(r.fields)),
        purpose=r.purpose,
        grant_id=r.grant_id,
        outcome=r.outcome,
        reason=r.reason,
        request_id=r.request_id,
        prev_hash=bytes(r.prev_hash).hex(),
        hash=bytes(r.hash).hex(),
    )


def _filtered(flt: EventFilter) -> Select[Any]:
    query = select(audit_events)
    c = audit_events.c
    for column, value in (
        (c.citizen_id, flt.citizen_id),
        (c.agency, flt.agency),
        (c.actor, flt.actor),
        (c.action, flt.action),
        (c.outcome, flt.outcome),
        (c.purpose, flt.purpose),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.since is not None:
        query = query.where(c.ts >= iso(flt.since))
    if flt.until is not None:
        query = query.where(c.ts < iso(flt.until))
    return query


def events(
    engine: Engine, flt: EventFilter, after: int = 0, limit: int = 100, newest_first: bool = False
) -> tuple[list[StoredEvent], int | None]:
    """One page of events past the cursor ``after`` in the page's order (oldest first: seq > after;
    newest first: seq < after, 0 starting at the newest); returns the page and the next cursor."""
    limit = max(1, min(limit, MAX_PAGE))
    seq = audit_events.c.seq
    if newest_first:
        query = _filtered(flt).where(seq < after) if after else _filtered(flt)
        query = query.order_by(seq.desc()).limit(limit + 1)
    else:
        query = _filtered(flt).where(seq > after).order_by(seq).limit(limit + 1)
    with engine.connect() as conn:
        rows = [_stored(r) for r in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def iter_events(engine: Engine, flt: EventFilter, up_to: int | None = None) -> Iterator[StoredEvent]:
    """Every matching event (streamed), optionally only up to sequence ``up_to``."""
    query = _filtered(flt).order_by(audit_events.c.seq)
    if up_to is not None:
        query = query.where(audit_events.c.seq <= up_to)
    with engine.connect() as conn:
        for r in conn.execution_options(yield_per=5000).execute(query):
            yield _stored(r)


# -- the citizen's view ----------------------------------------------------------------------
@dataclass(frozen=True)
class AccessEntry:
    """One line of a citizen's access log: who, when, what, why, on which basis."""

    seq: int
    ts: str
    who: str
    role: str
    agency: str
    action: str
    fields: list[str]
    purpose: str | None
    basis: str
    outcome: str
    lawful_basis: str | None = None  # the purpose's: consent, legal-obligation, public-task, vital-interest
    statute: str | None = None  # the statute the purpose named when the event happened, if any


def _basis(e: StoredEvent, citizen: str) -> str:
    if e.grant_id:
        return f"access grant {e.grant_id}"
    if e.actor == citizen:
        return "you"
    if e.role == "operator":
        return "vault operator"
    return f"{e.role} role at {e.agency}"


def access_log(
    engine: Engine, citizen_id: str, now: datetime, after: int = 0, limit: int = 100
) -> tuple[list[AccessEntry], int | None]:
    """Events about one citizen, except those under a deferral whose end date has not passed."""
    limit = max(1, min(limit, MAX_PAGE))
    # Only an approved deferral hides anything; a pending or rejected request hides nothing (v0009).
    requests, deferred_events = audit_deferral_requests.c, audit_deferred_events.c
    deferred = (
        select(deferred_events.seq)
        .join(audit_deferral_requests, requests.id == deferred_events.deferral_id)
        .where(deferred_events.citizen_id == citizen_id, requests.status == "approved", requests.until > iso(now))
    )
    # Each entry's lawful basis is its purpose's (a purpose's basis never changes), and the statute
    # the purpose version in force at the event's time named: in the same query, not one per entry.
    versions = purpose_versions.c
    statute_then = (
        select(versions.statute)
        .where(versions.code == audit_events.c.purpose, versions.recorded_at <= audit_events.c.ts)
        .order_by(versions.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        _filtered(EventFilter(citizen_id=citizen_id))
        .add_columns(
            purposes.c.lawful_basis.label("purpose_basis"),
            func.coalesce(statute_then, purposes.c.statute).label("purpose_statute"),
        )
        .outerjoin(purposes, purposes.c.code == audit_events.c.purpose)
        .where(audit_events.c.seq > after, not_(audit_events.c.seq.in_(deferred)))
        .order_by(audit_events.c.seq)
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        found = list(conn.execute(query))
    rows = [_stored(r) for r in found]
    lawful = [(r.purpose_basis, r.purpose_statute) for r in found]
    more = len(rows) > limit
    entries = [
        AccessEntry(
            e.seq,
            e.ts,
            "you" if e.actor == citizen_id else e.actor,
            e.role,
            e.agency,
            e.action,
            e.fields,
            e.purpose,
            _basis(e, citizen_id),
            e.outcome,
            *lawful[i],
        )
        for i, e in enumerate(rows[:limit])
    ]
    return entries, (entries[-1].seq if more and entries else None)


# -- compliance reports ----------------------------------------------------------------------
def access_report(engine: Engine, flt: EventFilter) -> list[dict[str, Any]]:
    """Per agency and purpose: events by action and outcome, and how many distinct citizens."""
    base = _filtered(flt).subquery()
    query = (
        select(
            base.c.agency,
            base.c.purpose,
            base.c.action,
            base.c.outcome,
            func.count().label("events"),
            func.count(base.c.citizen_id.distinct()).label("citizens"),
        )
        .group_by(base.c.agency, base.c.purpose, base.c.action, base.c.outcome)
        .order_by(base.c.agency, base.c.purpose, base.c.action, base.c.outcome)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@dataclass(frozen=True)
class Flag:
    """Something a compliance officer should look at, and the rule that raised it."""

    rule: str
    actor: str
    agency: str
    period: str
    observed: int
    threshold: float
    detail: str


@dataclass(frozen=True)
class FlagRules:
    """Thresholds of the unusual-access rules (documented in docs/audit.md)."""

    volume_factor: float = 3.0  # an actor's citizens/day vs. the median actor-day of their agency
    volume_minimum: int = 20  # ... and never below this many citizens in a day
    denial_burst: int = 10  # denied requests by one actor within one hour
    outside_purpose: int = 1  # refusals because a request fell outside a grant's purpose or fields


def unusual_access(engine: Engine, since: datetime, until: datetime, rules: FlagRules | None = None) -> list[Flag]:
    """Apply the rules to events in [since, until)."""
    rules = rules or FlagRules()
    c = audit_events.c
    window = and_(c.ts >= iso(since), c.ts < iso(until))
    day = func.substr(c.ts, 1, 10)
    hour = func.substr(c.ts, 1, 13)
    flags: list[Flag] = []
    with engine.connect() as conn:
        volume = conn.execute(
            select(c.actor, c.agency, day.label("day"), func.count(c.citizen_id.distinct()).label("n"))
            .where(window, c.action.in_(READ_ACTIONS), c.outcome == "allowed", c.role != "citizen")
            .group_by(c.actor, c.agency, day)
        ).all()
        denials = conn.execute(
            select(c.actor, c.agency, hour.label("hour"), func.count().label("n"))
            .where(window, c.outcome == "denied")
            .group_by(c.actor, c.agency, hour)
            .having(func.count() >= rules.denial_burst)
        ).all()
        purpose = conn.execute(
            select(c.actor, c.agency, func.count().label("n"))
            .where(window, c.outcome == "denied", c.reason.like("%purpose%"))
            .group_by(c.actor, c.agency)
            .having(func.count() >= rules.outside_purpose)
        ).all()
    per_agency: dict[str, list[int]] = {}
    for r in volume:
        per_agency.setdefault(r.agency, []).append(int(r.n))
    for r in volume:
        usual = statistics.median(per_agency[r.agency])
        threshold = max(rules.volume_factor * usual, float(rules.volume_minimum))
        if r.n > threshold:
            flags.append(
                Flag(
                    "volume",
                    r.actor,
                    r.agency,
                    r.day,
                    int(r.n),
                    threshold,
                    f"read {r.n} citizens in a day; usual for {r.agency} is {usual:g} per actor-day",
                )
            )
    for r in denials:
        flags.append(
            Flag(
                "denial-burst",
                r.actor,
                r.agency,
                f"{r.hour}:00",
                int(r.n),
                rules.denial_burst,
                f"{r.n} refused requests within one hour",
            )
        )
    for r in purpose:
        flags.append(
            Flag(
                "outside-purpose",
                r.actor,
                r.agency,
                f"{iso(since)[:10]}..{iso(until)[:10]}",
                int(r.n),
                rules.outside_purpose,
                f"{r.n} requests refused as outside a grant's purpose or fields",
            )
        )
    flags += _lockout_pressure(engine, window)
    return flags + registry_changes(engine, since, until)


def _lockout_pressure(engine: Engine, window: Any) -> list[Flag]:
    """``lockout-pressure``: many failed logins for one client within a minute, from whatever sources
    (one ``token.lockout-pressure`` event per spell, written by the token endpoint)."""
    c = audit_events.c
    query = select(c.actor, c.agency, c.ts, c.reason).where(window, c.action == "token.lockout-pressure")
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(c.seq)).all()
    flags = []
    for r in rows:
        head = (r.reason or "").split(" ", 1)[0]
        count = int(head) if head.isdigit() else 0  # the event fires at the first failure past the threshold
        flags.append(Flag("lockout-pressure", r.actor, r.agency, r.ts[:16], count, max(0, count - 1), r.reason or ""))
    return flags


# Separation of duties (docs/registry.md): every registry step that mints credentials or gives a
# reviewing or administering role is shown for review, with the refusals of the duty rules.
REGISTRY_RULES = {
    "client-created": (("clients.create",), "allowed", ("%",)),
    "client-approved": (("clients.approve",), "allowed", ("%",)),
    "client-secret-rotated": (("clients.rotate",), "allowed", ("%",)),
    "sensitive-role-assigned": (("role-assignments.create",), "allowed", ("admin for %", "compliance-officer for %")),
    "duty-refused": (
        ("clients.approve", "role-assignments.create", "role-assignments.delete", "audit.defer"),
        "denied",
        ("own-client:%", "self-assignment:%", "operator-only-role:%", "duty-conflict:%", "approver-is-requester:%"),
    ),
}


def registry_changes(engine: Engine, since: datetime, until: datetime) -> list[Flag]:
    """One flag per client creation, approval or re-keying, per admin or compliance-officer role
    given, and per separation-of-duties refusal, in [since, until)."""
    c = audit_events.c
    flags: list[Flag] = []
    with engine.connect() as conn:
        for rule, (actions, outcome, reasons) in REGISTRY_RULES.items():
            rows = conn.execute(
                select(c.actor, c.agency, c.ts, c.reason)
                .where(c.ts >= iso(since), c.ts < iso(until), c.action.in_(actions), c.outcome == outcome)
                .where(or_(*(c.reason.like(r) for r in reasons)))
                .order_by(c.seq)
            ).all()
            flags += [Flag(rule, r.actor, r.agency, r.ts, 1, 1, str(r.reason)) for r in rows]
    return flags


def default_window(now: datetime, days: int = 30) -> tuple[datetime, datetime]:
    """The window reports and flags use when none is given."""
    return now - timedelta(days=days), now + timedelta(seconds=1)
