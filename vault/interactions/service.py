"""Citizen interactions: service requests, complaints, enquiries and feedback (issue 15).

Public functions of :class:`InteractionService` (``actor``: vault.audit.log.Actor; a citizen's
``actor.subject`` is their citizen id; any other role acts for ``actor.agency``):

- ``create(actor, new: NewInteraction) -> Summary``: check against the catalogue, screen the text,
  seal it under the citizen's interactions key (or a key of its own when anonymous), write the row,
  its history, its anonymous facts row and the audit event in one transaction.
- ``get(actor, interaction_id) -> Interaction``: the full item with texts, audited in the same
  transaction (a citizen: their own only, else NotFound; an officer: their agency's only, else
  Refused ``other-agency``, audited).
- ``public(actor, interaction_id) -> Interaction`` / ``public_page(actor, search, agency=None)``:
  what an open 311 feed may publish: no identity, no contact, the redacted text only, no place that
  identifies a home (for vault.open311; audited).
- ``search(agency, search: Search) -> (list[Summary], total)``, ``mine(citizen_id, search)``,
  ``overdue(agency, limit, offset)``: lists without any text (nothing decrypted, nothing audited).
- ``change_status(actor, interaction_id, status, note=None) -> Summary``
- ``add_note(actor, interaction_id, note) -> Summary``
- ``assign(actor, interaction_id, unit, note=None) -> Summary``
- ``rate(actor, interaction_id, rating, comment=None) -> Summary`` (the citizen, after resolution)
- ``catalogue``: the ServiceCatalogue (vault.interactions.catalogue.ServiceCatalogue.load).

Errors: vault.interactions.errors (InteractionInvalid 422, TransitionRefused 409), vault.errors
NotFound, Refused, CitizenErased.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from keys.dekstore import DekStore
from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.errors import CitizenErased, NotFound, Refused
from vault.interactions import intake, queries
from vault.interactions import model as m
from vault.interactions.catalogue import ServiceCatalogue
from vault.interactions.errors import InteractionInvalid, TransitionRefused
from vault.interactions.facts import interaction_facts as facts
from vault.interactions.sealing import Sealer, owner_of
from vault.interactions.tables import interaction_events as ev
from vault.interactions.tables import interactions as t
from vault.interactions.views import build
from vault.models import citizens

if TYPE_CHECKING:
    from vault.pii.engine import Detector

__all__ = ["InteractionService"]

_TIME_COLUMN = {"acknowledged": "acknowledged_s", "in_progress": "in_progress_s", "resolved": "resolved_s"}
_ORDER = m.STATUSES


class InteractionService:
    """Record, follow and work citizen interactions."""

    def __init__(
        self,
        engine: Engine,
        dekstore: DekStore,
        audit: AuditLog,
        detector: Callable[[], Detector],
        catalogue: ServiceCatalogue | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.sealer = Sealer(dekstore)
        self.audit = audit
        self.detector = detector
        self.catalogue = catalogue or ServiceCatalogue.load()
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """The service's clock."""
        return self._clock()

    # -- intake ------------------------------------------------------------------------------
    def create(self, actor: Actor, new: m.NewInteraction) -> m.Summary:
        """Record a new interaction (see the module docstring); nothing is written on bad input."""
        service, area = intake.check(self.catalogue, new)
        citizen_id = actor.subject if actor.role == "citizen" else new.citizen_id
        if actor.role not in ("citizen", "agency-app") and service.agency != actor.agency:
            with self._audited(actor):
                self._refused(
                    actor, Event("interactions.create"), "other-agency", "this service belongs to another agency"
                )
        if citizen_id is not None:
            citizen_id = self._active_citizen(citizen_id)
        redacted, found = intake.screen(new.text, self.detector)
        iid = str(uuid.uuid4())
        owner = owner_of(iid, citizen_id)
        key = self.sealer.key_or_create(owner)
        now = self._clock()
        now_s = int(now.timestamp())
        row = {
            "id": iid,
            "citizen_id": citizen_id,
            "agency": service.agency,
            "service_code": service.code,
            "kind": new.kind,
            "channel": new.channel,
            "source": new.source,
            "status": "open",
            "area": area,
            "home": service.home or bool(new.location and new.location.address),
            "unit": None,
            "created_s": now_s,
            "updated_s": now_s,
            "ack_due_s": now_s + service.ack_target_s,
            "resolve_due_s": now_s + service.resolve_target_s,
            "pii_found": json.dumps(found, separators=(",", ":")),
            "sealed": self.sealer.seal(owner, key, iid, intake.sealed_values(new, redacted)),
        }
        try:
            with writing(self.engine) as conn:
                if citizen_id is not None:
                    self._active_citizen(citizen_id, conn)
                conn.execute(insert(t).values(row))
                self._history(conn, actor, iid, "created", "open", None, now)
                conn.execute(
                    insert(facts).values(
                        interaction_id=iid,
                        agency=service.agency,
                        service_code=service.code,
                        kind=new.kind,
                        channel=new.channel,
                        area=area,
                        status="open",
                        created_s=now_s,
                        ack_target_s=service.ack_target_s,
                        resolve_target_s=service.resolve_target_s,
                    )
                )
                self.audit.append(conn, actor, [self._event("interactions.create", iid, citizen_id, ["text"])])
        except BaseException:
            if citizen_id is None:
                self.sealer.destroy(owner)  # the anonymous item's own key: nothing else uses it
            raise
        return queries.summary(_Row(row), now_s)

    def _active_citizen(self, citizen_id: str, conn: Connection | None = None) -> str:
        try:
            cid = uuid.UUID(citizen_id)
        except ValueError:
            raise NotFound("no such citizen") from None
        query = select(citizens.c.status).where(citizens.c.id == cid)
        if conn is None:
            with self.engine.connect() as c:
                status = c.scalar(query)
        else:
            status = conn.scalar(query)
        if status is None:
            raise NotFound("no such citizen")
        if status != "active":
            raise CitizenErased("the citizen was erased")
        return str(cid)

    # -- reads -------------------------------------------------------------------------------
    def get(self, actor: Actor, interaction_id: str) -> m.Interaction:
        """The whole item, texts included; the read is audited in the same transaction."""
        with self._audited(actor), writing(self.engine) as conn:
            row = self._visible(conn, actor, interaction_id, "interactions.read")
            item = self._build(conn, row, public=False)
            self.audit.append(
                conn, actor, [self._event("interactions.read", row.id, row.citizen_id, ["text", "contact", "location"])]
            )
        return item

    def public(self, actor: Actor, interaction_id: str) -> m.Interaction:
        """What a public feed may show of one item (no identity, redacted text), audited."""
        with writing(self.engine) as conn:
            row = self._row(conn, interaction_id)
            item = self._build(conn, row, public=True)
            self.audit.append(conn, actor, [self._event("interactions.read-public", row.id, None, ["redacted"])])
        return item

    def public_page(self, actor: Actor, search: m.Search, agency: str | None = None) -> tuple[list[m.Interaction], int]:
        """A page of public views (newest first) and how many match; one audit event per item."""
        now_s = int(self._clock().timestamp())
        with writing(self.engine) as conn:
            page, total = queries.page(conn, search, now_s, agency=agency)
            items = [self._build(conn, self._row(conn, s.id), public=True) for s in page]
            if items:
                events = [self._event("interactions.read-public", i.id, None, ["redacted"]) for i in items]
                self.audit.append(conn, actor, events)
        return items, total

    def search(self, agency: str, search: m.Search) -> tuple[list[m.Summary], int]:
        """An agency's items without texts, newest first, and how many match."""
        with self.engine.connect() as conn:
            return queries.page(conn, search, int(self._clock().timestamp()), agency=agency)

    def mine(self, citizen_id: str, search: m.Search | None = None) -> tuple[list[m.Summary], int]:
        """A citizen's own items without texts, newest first."""
        with self.engine.connect() as conn:
            return queries.page(conn, search or m.Search(), int(self._clock().timestamp()), citizen_id=citizen_id)

    def overdue(self, agency: str, limit: int = 50, offset: int = 0) -> tuple[list[m.Summary], int]:
        """An agency's items past a service level (not acknowledged or not resolved in time)."""
        return self.search(agency, m.Search(overdue=True, limit=limit, offset=offset))

    # -- changes -----------------------------------------------------------------------------
    def change_status(self, actor: Actor, interaction_id: str, status: str, note: str | None = None) -> m.Summary:
        """Move an item forward (open -> acknowledged -> in_progress -> resolved -> closed)."""
        if status not in _ORDER:
            raise InteractionInvalid("invalid-status", "unknown status", {"status": f"one of {', '.join(_ORDER)}"})
        _check_note(note)
        with self._audited(actor), writing(self.engine) as conn:
            row = self._visible(conn, actor, interaction_id, "interactions.status", officer=True)
            if status not in m.NEXT[row.status]:
                raise TransitionRefused(
                    "invalid-transition", f"a {row.status} item cannot become {status}", {"status": row.status}
                )
            now = self._clock()
            now_s = int(now.timestamp())
            changes: dict[str, Any] = {"status": status, "updated_s": now_s}
            for name in _ORDER[_ORDER.index(row.status) + 1 : _ORDER.index(status) + 1]:
                column = "closed_s" if name == "closed" else _TIME_COLUMN.get(name)
                if column is not None and getattr(row, column) is None:
                    changes[column] = now_s
            conn.execute(update(t).where(t.c.id == row.id).values(changes))
            fact = {k: v for k, v in changes.items() if k in ("status", "acknowledged_s", "resolved_s", "closed_s")}
            conn.execute(update(facts).where(facts.c.interaction_id == row.id).values(fact))
            self._history(conn, actor, row.id, "status", status, None, now, self._sealed_note(row, note))
            fields = ["status", "note"] if note else ["status"]
            self.audit.append(conn, actor, [self._event("interactions.status", row.id, row.citizen_id, fields)])
            return queries.summary(_Row({**row._mapping, **changes}), now_s)

    def add_note(self, actor: Actor, interaction_id: str, note: str) -> m.Summary:
        """A status note on an item (an officer of its agency, or its citizen)."""
        _check_note(note, required=True)
        with self._audited(actor), writing(self.engine) as conn:
            row = self._visible(conn, actor, interaction_id, "interactions.note")
            if row.status == "closed":
                raise TransitionRefused("closed", "a closed item takes no more notes")
            return self._touch(conn, actor, row, "note", "interactions.note", self._sealed_note(row, note), {})

    def assign(self, actor: Actor, interaction_id: str, unit: str, note: str | None = None) -> m.Summary:
        """Give an item to one of its agency's units (policies/services.yaml)."""
        _check_note(note)
        with self._audited(actor), writing(self.engine) as conn:
            row = self._visible(conn, actor, interaction_id, "interactions.assign", officer=True)
            if unit not in self.catalogue.units.get(row.agency, ()):
                raise InteractionInvalid("unknown-unit", "not a unit of this agency", {"unit": "not in the catalogue"})
            if row.status == "closed":
                raise TransitionRefused("closed", "a closed item cannot be assigned")
            sealed = self._sealed_note(row, note)
            return self._touch(conn, actor, row, "assign", "interactions.assign", sealed, {"unit": unit})

    def rate(self, actor: Actor, interaction_id: str, rating: int, comment: str | None = None) -> m.Summary:
        """The citizen rates their item, 1..5, once, after it was resolved."""
        if not 1 <= rating <= 5:
            raise InteractionInvalid("invalid-rating", "rate from 1 to 5", {"rating": "1..5"})
        if comment is not None and len(comment) > m.MAX_COMMENT:
            raise InteractionInvalid("text-too-long", "too long", {"comment": f"at most {m.MAX_COMMENT} characters"})
        with self._audited(actor), writing(self.engine) as conn:
            row = self._visible(conn, actor, interaction_id, "interactions.rate")
            if actor.role != "citizen":
                self._refused(
                    actor,
                    self._event("interactions.rate", row.id, row.citizen_id, []),
                    "citizen-only",
                    "only the citizen who filed it rates an item",
                )
            if row.status not in ("resolved", "closed"):
                raise TransitionRefused("not-resolved", "rate an item once it is resolved", {"status": row.status})
            if row.rating is not None:
                raise TransitionRefused("already-rated", "this item was rated already")
            conn.execute(update(facts).where(facts.c.interaction_id == row.id).values(rating=rating))
            sealed = self._sealed_note(row, comment or None)
            return self._touch(conn, actor, row, "rating", "interactions.rate", sealed, {"rating": rating})

    # -- helpers -----------------------------------------------------------------------------
    def _touch(
        self,
        conn: Connection,
        actor: Actor,
        row: Any,
        kind: str,
        action: str,
        note: bytes | None,
        changes: dict[str, Any],
    ) -> m.Summary:
        now = self._clock()
        now_s = int(now.timestamp())
        changes = {**changes, "updated_s": now_s}
        conn.execute(update(t).where(t.c.id == row.id).values(changes))
        self._history(conn, actor, row.id, kind, row.status, changes.get("unit"), now, note)
        fields = [kind] + (["note"] if note is not None else [])
        self.audit.append(conn, actor, [self._event(action, row.id, row.citizen_id, fields)])
        return queries.summary(_Row({**row._mapping, **changes}), now_s)

    def _row(self, conn: Connection, interaction_id: str) -> Any:
        try:
            iid = str(uuid.UUID(interaction_id))
        except ValueError:
            raise NotFound("no such interaction") from None
        query = select(t).where(t.c.id == iid)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # serialises concurrent changes of one item
        row = conn.execute(query).one_or_none()
        if row is None:
            raise NotFound("no such interaction")
        return row

    def _visible(self, conn: Connection, actor: Actor, interaction_id: str, action: str, officer: bool = False) -> Any:
        """The row if ``actor`` may act on it: a citizen their own (else NotFound, as if absent), an
        officer their agency's (else Refused other-agency, audited)."""
        row = self._row(conn, interaction_id)
        if actor.role == "citizen":
            if row.citizen_id != actor.subject:
                raise NotFound("no such interaction")
            if officer:
                self._refused(
                    actor,
                    self._event(action, row.id, row.citizen_id, []),
                    "agency-only",
                    "the receiving agency works the item",
                )
        elif row.agency != actor.agency:
            self._refused(
                actor,
                self._event(action, row.id, row.citizen_id, []),
                "other-agency",
                "the item belongs to another agency; read it through a grant (docs/interactions.md)",
            )
        return row

    @staticmethod
    def _refused(actor: Actor, event: Event, reason: str, message: str) -> None:
        """Raise a refusal carrying its audit event; :meth:`_audited` records it once the caller's
        transaction has rolled back (a write inside it would wait on itself)."""
        exc = Refused(reason, message)
        exc.audit_event = Event(event.action, "denied", event.citizen_id, event.fields, reason=reason)  # type: ignore[attr-defined]
        raise exc

    @contextmanager
    def _audited(self, actor: Actor) -> Iterator[None]:
        try:
            yield
        except Refused as exc:
            event = getattr(exc, "audit_event", None)
            if isinstance(event, Event):
                self.audit.record(actor, event)
            raise

    def _sealed_note(self, row: Any, note: str | None) -> bytes | None:
        if not note:
            return None
        owner = owner_of(row.id, row.citizen_id)
        key = self.sealer.key(owner)
        if key is None:
            raise CitizenErased("the citizen was erased: their item takes no more text")
        redacted, _ = intake.screen(note, self.detector)
        return self.sealer.seal(owner, key, f"{row.id}/note", {"note": note, "redacted": redacted})

    def _history(
        self,
        conn: Connection,
        actor: Actor,
        iid: str,
        kind: str,
        status: str | None,
        unit: str | None,
        now: datetime,
        note: bytes | None = None,
    ) -> None:
        # the item's row is locked by this transaction (SQLite's write lock, PostgreSQL's FOR UPDATE)
        seq = int(conn.scalar(select(func.count()).where(ev.c.interaction_id == iid)) or 0) + 1
        conn.execute(
            insert(ev).values(
                id=str(uuid.uuid4()),
                interaction_id=iid,
                seq=seq,
                at=iso(now),
                kind=kind,
                status=status,
                unit=unit,
                by_role=actor.role[:32],
                by_agency=actor.agency[:64],
                note=note,
            )
        )

    def _build(self, conn: Connection, row: Any, public: bool) -> m.Interaction:
        history = conn.execute(select(ev).where(ev.c.interaction_id == row.id).order_by(ev.c.seq)).all()
        owner = owner_of(row.id, row.citizen_id)
        return build(row, history, self.sealer, owner, self.sealer.key(owner), public, int(self._clock().timestamp()))

    @staticmethod
    def _event(action: str, iid: str, citizen_id: str | None, fields: list[str]) -> Event:
        # The audit event names the item among its fields (events have no column for it): names, never values.
        return Event(action, citizen_id=citizen_id, fields=[f"interaction:{iid}", *fields])


def _check_note(note: str | None, required: bool = False) -> None:
    if required and not (note or "").strip():
        raise InteractionInvalid("invalid-note", "write a note", {"note": "required"})
    if note is not None and len(note) > m.MAX_NOTE:
        raise InteractionInvalid("text-too-long", "too long", {"note": f"at most {m.MAX_NOTE} characters"})


class _Row:
    """Attribute access over a dict, so a row just written reads like a fetched one."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(
            {
                "acknowledged_s": None,
                "in_progress_s": None,
                "resolved_s": None,
                "closed_s": None,
                "rating": None,
                **values,
            }
        )
