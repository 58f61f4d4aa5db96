"""Rights requests, the handling officers' side: queue, overdue, assign, extend, approve or deny,
complete (by kind), a rectification's accept or refuse, messages, lifting a restriction.

Who sees and handles a request: officers of the agency it is routed to (vault.requests.model);
compliance officers see their agency's, the vault operator's every request (overview, overdue), and
never handle one (they read and never write). Anyone else meets NotFound, exactly as for an absent
request. An erasure is executed only by a registrar.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from keys.sqlstore import writing
from vault.audit.log import Actor, Event, iso
from vault.catalogue import Value
from vault.duties import OPERATOR_AGENCY
from vault.errors import CannotDecrypt, NotFound, Refused, ValidationFailed
from vault.requests import restrictions, store
from vault.requests.model import MAX_EXTENSION_MONTHS, MAX_MESSAGE, OPEN, RightsRequest, add_months, request_from_row
from vault.requests.service import RequestService
from vault.requests.store import RequestConflict
from vault.requests.tables import rights_requests as rr

MAX_PAGE = 200


def sees_all(actor: Actor) -> bool:
    """The operator's compliance officers oversee every agency's requests."""
    return actor.role == "compliance-officer" and actor.agency == OPERATOR_AGENCY


class RequestDesk(RequestService):
    """Both sides of rights requests: the citizen's (RequestService) and the officers'."""

    def _visible(self, actor: Actor) -> Callable[[Any], bool]:
        return lambda row: sees_all(actor) or row.agency == actor.agency

    # -- read ------------------------------------------------------------------------------
    def queue(
        self,
        actor: Actor,
        *,
        status: str | None = None,
        kind: str | None = None,
        agency: str | None = None,
        overdue: bool = False,
        limit: int = 50,
    ) -> list[RightsRequest]:
        """Requests the officer may see, soonest due first; ``status`` "open" means any open one."""
        now = iso(self.clock())
        query = select(rr).order_by(rr.c.due_at, rr.c.id).limit(max(1, min(limit, MAX_PAGE)))
        if not sees_all(actor):
            query = query.where(rr.c.agency == actor.agency)
        if agency is not None:
            query = query.where(rr.c.agency == agency)
        if status == "open":
            query = query.where(rr.c.status.in_(OPEN))
        elif status is not None:
            query = query.where(rr.c.status == status)
        if kind is not None:
            query = query.where(rr.c.kind == kind)
        if overdue:
            query = query.where(rr.c.status.in_(OPEN), rr.c.due_at < now)
        with self.engine.connect() as conn:
            return [request_from_row(r, now) for r in conn.execute(query)]

    def overdue(self, actor: Actor, limit: int = 50) -> tuple[int, list[RightsRequest]]:
        """How many open requests the officer may see are past their due date, and the first of them."""
        now = iso(self.clock())
        query = select(rr.c.id).where(rr.c.status.in_(OPEN), rr.c.due_at < now)
        if not sees_all(actor):
            query = query.where(rr.c.agency == actor.agency)
        with self.engine.connect() as conn:
            count = len(conn.execute(query).all())
        return count, self.queue(actor, overdue=True, limit=limit)

    def handled(self, actor: Actor, request_id: str) -> RightsRequest:
        """One request the officer may see, with history and messages (audited ``requests.read``)."""
        return self.load(actor, request_id, self._visible(actor))

    def proposed(self, actor: Actor, request_id: str) -> dict[str, Value | None]:
        """A rectification's proposed values, for the officer deciding it (audited, field names only)."""
        with writing(self.engine) as conn:
            row = self._row(conn, actor, request_id, handle=True)
            if row.kind != "rectification" or row.proposed is None:
                raise NotFound("no proposed values")
            text = store.open_text(
                self.dekstore, row.citizen_id, int(row.dek_version), store.proposed_name(row.id), row.proposed
            )
            if text is None:
                raise CannotDecrypt("the proposed values can no longer be decrypted")
            values: dict[str, Value | None] = json.loads(text)
            self.audit.append(
                conn,
                actor,
                [Event("requests.read-proposed", citizen_id=row.citizen_id, fields=sorted(values), reason=row.id)],
            )
        return values

    def _row(self, conn: Connection, actor: Actor, request_id: str, handle: bool) -> Any:
        row = conn.execute(select(rr).where(rr.c.id == request_id)).first()
        if row is None or not (row.agency == actor.agency or (not handle and sees_all(actor))):
            raise NotFound("no such request")
        if handle and actor.role == "compliance-officer":
            raise Refused("compliance-read-only", "compliance officers oversee requests and do not decide them")
        return row

    # -- steps -----------------------------------------------------------------------------
    def _step(
        self, actor: Actor, request_id: str, action: str, work: Callable[[Connection, Any, str], str | None]
    ) -> RightsRequest:
        """Run one audited step on a request the officer handles: ``work`` changes it in the
        transaction and returns the history event (None: no history row)."""
        event = Event(f"requests.{action}", reason=request_id)
        with self.refusals_audited(actor, event), writing(self.engine) as conn:
            row = self._row(conn, actor, request_id, handle=True)
            event = replace(event, citizen_id=row.citizen_id, reason=f"{row.kind}:{row.id}")
            at = iso(self.clock())
            what = work(conn, row, at)
            if what is not None:
                status = conn.scalar(select(rr.c.status).where(rr.c.id == request_id))
                store.add_history(conn, request_id, str(status), what, at, actor)
            self.audit.append(conn, actor, [event])
        return self.load(actor, request_id, self._visible(actor), audited=False)

    def assign(self, actor: Actor, request_id: str, assignee: str) -> RightsRequest:
        """Give the request to an officer (by subject)."""
        if not 1 <= len(assignee) <= 256:
            raise ValidationFailed({"assignee": "1-256 characters"})

        def work(conn: Connection, row: Any, at: str) -> str:
            store.move(conn, row, row.status, at, OPEN, assignee=assignee)
            return "assigned"

        return self._step(actor, request_id, "assign", work)

    def extend(self, actor: Actor, request_id: str, months: int, reason: str) -> RightsRequest:
        """Move the due date by ``months`` (two at most in all, GDPR Art. 12(3)), telling the
        citizen why (the reason is a message: sealed under their key)."""
        _text(reason, "reason")

        def work(conn: Connection, row: Any, at: str) -> str:
            total = int(row.extensions) + months
            if months < 1 or total > MAX_EXTENSION_MONTHS:
                raise RequestConflict("extension-limit", f"at most {MAX_EXTENSION_MONTHS} months in all")
            submitted = datetime_of(row.submitted_at)
            due = iso(add_months(submitted, 1 + total))
            store.move(conn, row, row.status, at, OPEN, extensions=total, due_at=due)
            self._tell(conn, row, f"Deadline extended by {months} month(s): {reason}", at)
            return f"extended-{months}m"

        return self._step(actor, request_id, "extend", work)

    def message(self, actor: Actor, request_id: str, text: str) -> RightsRequest:
        """Write to the citizen on the request."""
        _text(text, "message")

        def work(conn: Connection, row: Any, at: str) -> str:
            self._tell(conn, row, text, at)
            return "message"

        return self._step(actor, request_id, "message", work)

    def _tell(self, conn: Connection, row: Any, text: str, at: str) -> None:
        sealer = store.cipher(conn, self.dekstore, uuid.UUID(row.citizen_id))
        store.add_message(conn, sealer, row.id, text, at, "officer")

    def approve(self, actor: Actor, request_id: str) -> RightsRequest:
        """Approve (then complete it, or for a rectification accept it)."""

        def work(conn: Connection, row: Any, at: str) -> str:
            store.move(conn, row, "approved", at, ("submitted", "verified"))
            return "approved"

        return self._step(actor, request_id, "approve", work)

    def deny(self, actor: Actor, request_id: str, reason: str, action: str = "deny") -> RightsRequest:
        """Deny with a reason told to the citizen (a rectification's refusal is this too)."""
        _text(reason, "reason")

        def work(conn: Connection, row: Any, at: str) -> str:
            store.move(conn, row, "denied", at, ("submitted", "verified", "approved"))
            self._tell(conn, row, reason, at)
            return "denied"

        return self._step(actor, request_id, action, work)

    def refuse(self, actor: Actor, request_id: str, reason: str) -> RightsRequest:
        """Refuse a rectification with a reason."""
        return self.deny(actor, request_id, reason, action="refuse")

    def accept(self, actor: Actor, request_id: str) -> RightsRequest:
        """Accept a rectification: the correction is applied through the profile service (under
        the routed agency as source, audited there), then the request is complete. Re-running
        after a failure in between applies the same values again."""
        values = self.proposed(actor, request_id)
        with writing(self.engine) as conn:
            row = self._row(conn, actor, request_id, handle=True)
        if row.kind != "rectification":
            raise RequestConflict("not-a-rectification", "only a rectification is accepted with a correction")
        if row.status not in ("submitted", "verified", "approved"):
            raise RequestConflict("invalid-transition", f"a {row.status} request cannot be accepted")
        self.profiles.correct(uuid.UUID(row.citizen_id), values, row.agency, actor=actor)

        def work(conn: Connection, row: Any, at: str) -> str:
            store.move(conn, row, "complete", at, ("submitted", "verified", "approved"))
            conn.execute(
                rr.update().where(rr.c.id == row.id).values(detail=store.detail_with(row, outcome="corrected"))
            )
            return "corrected"

        return self._step(actor, request_id, "accept", work)

    def complete(self, actor: Actor, request_id: str) -> RightsRequest:
        """Carry out an approved request: a restriction or objection comes into force; an erasure is
        executed by crypto-shredding (the profile service's erase, which keeps legally held fields)."""
        with writing(self.engine) as conn:
            row = self._row(conn, actor, request_id, handle=True)
        if row.kind == "erasure":
            return self._erase(actor, row)

        def work(conn: Connection, row: Any, at: str) -> str:
            if row.kind == "rectification":
                raise RequestConflict("accept-rectification", "accept a rectification with its correction")
            store.move(conn, row, "complete", at, ("approved",))
            if row.kind in ("restriction", "objection"):
                restrictions.impose(conn, row.id, row.citizen_id, json.loads(row.detail)["purposes"], at)
            return "complete"

        return self._step(actor, request_id, "complete", work)

    def _erase(self, actor: Actor, row: Any) -> RightsRequest:
        if actor.role != "registrar":
            err = Refused("erasure-by-registrar", "only a registrar executes an erasure")
            with self.refusals_audited(actor, Event("requests.complete", citizen_id=row.citizen_id, reason=row.id)):
                raise err

        def start(conn: Connection, row: Any, at: str) -> str:
            if self.blocking_purposes(conn, row.citizen_id, self.clock()):
                raise Refused("erasure-blocked-legal-obligation", "processing under a legal obligation is ongoing")
            store.move(conn, row, "processing", at, ("approved",))
            return "processing"

        if row.status != "processing":  # a retry after a failed erase picks up here
            self._step(actor, row.id, "process", start)
        report = self.profiles.erase(uuid.UUID(row.citizen_id), actor=actor)

        def finish(conn: Connection, row: Any, at: str) -> str:
            store.move(conn, row, "complete", at, ("processing",))
            outcome = {"destroyed": report.destroyed_fields, "held": report.held_fields}
            conn.execute(rr.update().where(rr.c.id == row.id).values(detail=store.detail_with(row, outcome=outcome)))
            return "erased"

        return self._step(actor, row.id, "complete", finish)

    def lift(self, actor: Actor, request_id: str) -> RightsRequest:
        """End a restriction (or objection) in force."""

        def work(conn: Connection, row: Any, at: str) -> str:
            if row.kind not in ("restriction", "objection") or row.status != "complete":
                raise RequestConflict("nothing-to-lift", "only a restriction in force can be lifted")
            restrictions.lift(conn, row.id, at)
            return "lifted"

        return self._step(actor, request_id, "lift", work)


def _text(text: str, name: str) -> None:
    if not 1 <= len(text.strip()) <= MAX_MESSAGE or len(text) > MAX_MESSAGE:
        raise ValidationFailed({name: f"1-{MAX_MESSAGE} characters"})


def datetime_of(stamp: str) -> datetime:
    """Inverse of vault.audit.log.iso."""
    return datetime.fromisoformat(stamp.rstrip("Z")).replace(tzinfo=UTC)
