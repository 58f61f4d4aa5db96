"""Representation: record, end, give and withdraw relations, and decide whether someone may act
for a citizen now. Every change and every refusal is audited; a change with its event in one
transaction (no audit, no data).

Who may do what is a rule of this module, not of the caller: parent and guardian relations are
recorded and ended by a registrar (the API's Casbin line says which role reaches here); a mandate
is given and withdrawn only by the represented citizen, acting as themselves (never through a
representative, never by an officer).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, or_, select, update

from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.errors import CitizenErased, Conflict, NotFound, ValidationFailed
from vault.models import citizens
from vault.profiles.service import ProfileService
from vault.representation.errors import RepresentationRefused
from vault.representation.policy import RepresentationPolicy
from vault.representation.tables import representations

KINDS = ("parent", "guardian", "mandate")
ACTIONS = ("view", "export", "consents", "requests")
REPRESENTATIVE = "representative"  # the audit role of a request made for someone else
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Relation:
    """One relation: who acts for whom, as what, for which actions, from when until when."""

    id: str
    represented_id: str
    representative_type: str
    representative_id: str
    kind: str
    scope: tuple[str, ...]
    valid_from: str
    valid_until: str | None
    status: str
    recorded_by: str
    recorded_at: str
    ended_at: str | None

    def public(self) -> dict[str, object]:
        """The JSON form (API, pages): ids, kind, scope and dates only."""
        return {
            "id": self.id,
            "represented_id": self.represented_id,
            "representative_type": self.representative_type,
            "representative_id": self.representative_id,
            "kind": self.kind,
            "scope": list(self.scope),
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "ends_at_majority": self.kind == "parent",
            "status": self.status,
            "recorded_at": self.recorded_at,
            "ended_at": self.ended_at,
        }


@dataclass(frozen=True)
class Acting:
    """A request allowed to act for ``relation.represented_id``, and the audit actor it runs as:
    the representative's subject, role ``representative``, and ``<kind>:<relation id>`` where an
    officer's agency would be (so each event names the relation without a new audit column)."""

    relation: Relation
    actor: Actor


def relation_of(actor: Actor) -> tuple[str, str] | None:
    """(kind, relation id) of an audit actor acting as a representative, else None."""
    if actor.role != REPRESENTATIVE:
        return None
    kind, _, relation_id = actor.agency.partition(":")
    return (kind, relation_id) if kind in KINDS and relation_id else None


def _row(r: object) -> Relation:
    get = r._mapping  # type: ignore[attr-defined]
    return Relation(
        get["id"],
        get["represented_id"],
        get["representative_type"],
        get["representative_id"],
        get["kind"],
        tuple(s for s in get["scope"].split(",") if s),
        get["valid_from"],
        get["valid_until"],
        get["status"],
        get["recorded_by"],
        get["recorded_at"],
        get["ended_at"],
    )


def _scope(scope: Sequence[str] | None) -> str:
    chosen = set(ACTIONS if scope is None else scope)
    unknown = chosen - set(ACTIONS)
    if unknown or not chosen:
        raise ValidationFailed({"scope": f"choose one or more of {', '.join(ACTIONS)}"})
    return ",".join(sorted(chosen))


class RepresentationService:
    """The only reader and writer of representation relations."""

    def __init__(
        self,
        engine: Engine,
        profiles: ProfileService,
        audit: AuditLog,
        policy: RepresentationPolicy,
        clock: Clock = _utcnow,
    ) -> None:
        self.engine = engine
        self.profiles = profiles
        self.audit = audit
        self.policy = policy
        self.clock = clock

    # -- refusals -------------------------------------------------------------------------
    def _refuse(self, actor: Actor, event: Event, reason: str, message: str) -> RepresentationRefused:
        """Audit a refusal (its own transaction: nothing else happened) and return the error to raise."""
        self.audit.record(actor, Event(event.action, "denied", event.citizen_id, (), event.purpose, None, reason))
        return RepresentationRefused(reason, message)

    # -- registrar: parents and guardians ---------------------------------------------------
    def record(
        self,
        actor: Actor,
        kind: str,
        represented: uuid.UUID,
        representative: uuid.UUID,
        scope: Sequence[str] | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> Relation:
        """A parent (of a minor; ends at majority) or guardian relation, recorded by a registrar."""
        event = Event("representation.record", citizen_id=represented)
        if kind not in ("parent", "guardian"):
            raise self._refuse(actor, event, "mandate-by-citizen-only", "a mandate is given by the citizen themselves")
        if represented == representative:
            raise self._refuse(actor, event, "self-representation", "nobody represents themselves")
        if kind == "parent" and valid_until is not None:
            raise ValidationFailed({"valid_until": "a parent's relation ends at the child's majority"})
        self._exists(representative, "representative_id")
        self._exists(represented, "represented_id")
        if kind == "parent" and not self._minor(str(represented), actor, "representation.age-check"):
            raise self._refuse(actor, event, "not-a-minor", "a parent relation is for a child under the majority age")
        return self._insert(actor, kind, str(represented), str(representative), scope, valid_from, valid_until)

    def end(self, actor: Actor, relation_id: str) -> Relation:
        """End a parent or guardian relation now (registrar); a mandate is withdrawn by its giver only."""
        found = self.get(relation_id)
        if found.kind == "mandate":
            event = Event("representation.end", citizen_id=found.represented_id)
            raise self._refuse(actor, event, "mandate-by-citizen-only", "only the citizen withdraws their mandate")
        return self._end(actor, found, "representation.end")

    # -- citizens: mandates -------------------------------------------------------------------
    def give_mandate(
        self,
        actor: Actor,
        citizen: str,
        national_id: str,
        scope: Sequence[str] | None,
        valid_from: datetime | None,
        valid_until: datetime | None,
    ) -> Relation:
        """A mandate from ``citizen`` to the person with ``national_id`` (blind index; nothing decrypted)."""
        event = Event("representation.mandate-give", citizen_id=citizen)
        if actor.role != "citizen" or actor.subject != citizen:
            raise self._refuse(actor, event, "mandate-by-citizen-only", "a mandate is given by the citizen themselves")
        found = self.profiles.lookup("national_id", national_id, actor=actor)
        if len(found) != 1:
            raise ValidationFailed({"national_id": "no one can receive a mandate under this national id"})
        if str(found[0]) == citizen:
            raise self._refuse(actor, event, "self-representation", "nobody represents themselves")
        return self._insert(actor, "mandate", citizen, str(found[0]), scope, valid_from, valid_until)

    def withdraw_mandate(self, actor: Actor, citizen: str, relation_id: str) -> Relation:
        """Withdraw a mandate ``citizen`` gave (only they may, as themselves)."""
        event = Event("representation.mandate-withdraw", citizen_id=citizen)
        if actor.role != "citizen" or actor.subject != citizen:
            raise self._refuse(actor, event, "mandate-by-citizen-only", "only the citizen withdraws their mandate")
        found = self.get(relation_id)
        if found.kind != "mandate" or found.represented_id != citizen:
            raise NotFound("no such mandate of yours")
        return self._end(actor, found, "representation.mandate-withdraw")

    # -- reading ------------------------------------------------------------------------------
    def get(self, relation_id: str) -> Relation:
        """One relation; NotFound when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(representations).where(representations.c.id == str(relation_id))).first()
        if row is None:
            raise NotFound("no such representation")
        return _row(row)

    def of(self, citizen: str) -> tuple[list[Relation], list[Relation]]:
        """(who represents ``citizen``, whom ``citizen`` represents), newest first, ended ones too."""
        t = representations.c
        query = select(representations).where(or_(t.represented_id == citizen, t.representative_id == citizen))
        with self.engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(query.order_by(t.recorded_at.desc()))]
        return [r for r in rows if r.represented_id == citizen], [r for r in rows if r.representative_id == citizen]

    # -- acting for someone -----------------------------------------------------------------
    def authorise(self, representative: str, represented: str, action: str, request_id: str | None) -> Acting:
        """May ``representative`` (a citizen's subject) do ``action`` for ``represented`` now?
        The relation's scope and dates, and for a parent the child's age, are checked on every
        call; a refusal is audited under the represented citizen's id and raised."""
        me = Actor(representative, "citizen", "-", request_id)
        try:
            target = str(uuid.UUID(represented))
        except ValueError:
            target = None
        event = Event("representation.act", citizen_id=target, purpose=None)
        if action not in ACTIONS:
            raise self._refuse(me, event, "not-delegable", "this cannot be done for someone else")
        t = representations.c
        with self.engine.connect() as conn:
            rows = [
                _row(r)
                for r in conn.execute(
                    select(representations).where(
                        t.representative_id == representative,
                        t.represented_id == (target or ""),
                        t.representative_type == "citizen",
                        t.status == "active",
                    )
                )
            ]
        if not rows:  # the same answer whether or not the person exists
            raise self._refuse(me, event, "no-representation", "you may not act for this person")
        rows = [r for r in rows if action in r.scope]
        if not rows:
            raise self._refuse(me, event, "outside-scope", f"your representation does not cover {action}")
        now = iso(self.clock())
        if all(r.valid_from > now for r in rows):
            raise self._refuse(me, event, "not-yet-valid", "your representation has not started yet")
        rows = [r for r in rows if r.valid_from <= now and (r.valid_until is None or now < r.valid_until)]
        if not rows:
            raise self._refuse(me, event, "representation-ended", "your representation has ended")
        chosen = sorted(rows, key=lambda r: KINDS.index(r.kind))[0]
        acting = Acting(chosen, Actor(representative, REPRESENTATIVE, f"{chosen.kind}:{chosen.id}", request_id))
        if chosen.kind == "parent" and not self._minor(chosen.represented_id, acting.actor, "representation.age-check"):
            raise self._refuse(me, event, "child-of-age", "the child has come of age: a parent no longer acts for them")
        return acting

    def choices(self, representative: str) -> list[Relation]:
        """The active relations ``representative`` may act under now (dates; a parent's age is
        checked when acting, not here: listing decrypts nothing)."""
        now = iso(self.clock())
        _, mine = self.of(representative)
        return [
            r
            for r in mine
            if r.status == "active" and r.valid_from <= now and (r.valid_until is None or now < r.valid_until)
        ]

    # -- a minor's consent ------------------------------------------------------------------
    def consent_gate(self, citizen: str, purpose: str, actor: Actor) -> None:
        """Refuse (``parent-consent-required``) a minor's own consent where the policy wants a
        parent's; a parent or guardian acting for the minor passes. Called by ConsentService.give."""
        if not self.policy.needs_parent(purpose):
            return
        acting = relation_of(actor)
        if acting is not None and acting[0] in ("parent", "guardian"):
            return
        if self._minor(citizen, actor, "consents.age-check"):
            event = Event("consents.give", citizen_id=citizen, purpose=purpose)
            raise self._refuse(actor, event, "parent-consent-required", "a parent or guardian gives this consent")

    # -- internals ----------------------------------------------------------------------------
    def _minor(self, citizen: str, actor: Actor, action: str) -> bool:
        """Whether ``citizen`` is under the majority age today; reading the date of birth is an
        audited read (``action``). No date of birth recorded: not known to be a minor."""
        try:
            profile = self.profiles.read(uuid.UUID(citizen), ["date_of_birth"], actor=actor, action=action)
        except (NotFound, CitizenErased):
            return False
        born = profile.values.get("date_of_birth")
        if not isinstance(born, str):
            return False
        return self.clock().date() < self.policy.majority(date.fromisoformat(born))

    def _exists(self, citizen: uuid.UUID, field: str) -> None:
        with self.engine.connect() as conn:
            status = conn.scalar(select(citizens.c.status).where(citizens.c.id == citizen))
        if status != "active":
            raise ValidationFailed({field: "no active citizen with this id"})

    def _insert(
        self,
        actor: Actor,
        kind: str,
        represented: str,
        representative: str,
        scope: Sequence[str] | None,
        valid_from: datetime | None,
        valid_until: datetime | None,
    ) -> Relation:
        now = self.clock()
        start = valid_from or now
        if valid_until is not None and valid_until <= max(start, now):
            raise ValidationFailed({"valid_until": "must be after the start and in the future"})
        relation = Relation(
            str(uuid.uuid4()),
            represented,
            "citizen",
            representative,
            kind,
            tuple(_scope(scope).split(",")),
            iso(start),
            None if valid_until is None else iso(valid_until),
            "active",
            actor.subject,
            iso(now),
            None,
        )
        t = representations.c
        with writing(self.engine) as conn:
            duplicate = conn.scalar(
                select(t.id).where(
                    t.represented_id == represented,
                    t.representative_id == representative,
                    t.kind == kind,
                    t.status == "active",
                )
            )
            if duplicate is not None:
                raise Conflict("representative_id", f"an active {kind} relation exists already ({duplicate})")
            values = vars(relation) | {"scope": ",".join(relation.scope), "ended_by": None}
            conn.execute(representations.insert().values(**values))
            self.audit.append(conn, actor, self._events("representation." + _verb(kind), relation))
        return relation

    def _end(self, actor: Actor, found: Relation, action: str) -> Relation:
        if found.status != "active":
            raise Conflict("status", "this relation has ended already")
        now = iso(self.clock())
        t = representations.c
        with writing(self.engine) as conn:
            done = conn.execute(
                update(representations)
                .where(t.id == found.id, t.status == "active")
                .values(status="ended", ended_by=actor.subject, ended_at=now)
            )
            if done.rowcount != 1:
                raise Conflict("status", "this relation has ended already")
            self.audit.append(conn, actor, self._events(action, found))
        return self.get(found.id)

    @staticmethod
    def _events(action: str, relation: Relation) -> list[Event]:
        """One event on each side's log: the represented citizen's, and the representative's."""
        reason = f"{relation.kind} {relation.id}"
        return [
            Event(action, citizen_id=relation.represented_id, reason=reason),
            Event(action, citizen_id=relation.representative_id, reason=reason),
        ]


def _verb(kind: str) -> str:
    return "mandate-give" if kind == "mandate" else "record"
