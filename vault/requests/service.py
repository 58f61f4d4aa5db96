"""Rights requests, the citizen's side: submit, list, read, withdraw; and what an erasure would keep.

Every step is audited in its own transaction with the change (no audit, no data); a refusal is
audited too, with its reason. The handling officers' side is vault/requests/handling.py.

What each kind checks at submission (docs/rights-requests.md):

- access: answered at once by the citizen's signed export (vault/citizen_export.py): complete.
- rectification: known fields, values the catalogue accepts, routed to the fields' source agency
  (all named fields must share one); the proposed values are sealed under the citizen's data key.
- erasure: refused while processing under a legal obligation is ongoing (an active grant whose
  basis is legal-obligation); the fields the law keeps are named with their basis.
- restriction: purposes that exist; objection: only a purpose resting on public task (consent: withdraw
  it instead; legal obligation and vital interest: the law overrides an objection). Routed to the
  one agency that uses the purposes (the controller deciding), else to the civil registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from keys.dekstore import DekStore
from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.catalogue import Catalogue
from vault.errors import AuditUnavailable, NotFound, Refused, ValidationFailed, VaultError
from vault.grants.tables import grant_citizens, grants
from vault.models import citizens
from vault.profiles import records
from vault.profiles.service import ProfileService, reason_code
from vault.purposes.service import PurposeService
from vault.requests import restrictions, store
from vault.requests.model import (
    DEFAULT_SOURCE,
    ERASURE_AGENCY,
    KINDS,
    MAX_MESSAGE,
    OPEN,
    RightsRequest,
    add_months,
    request_from_row,
)
from vault.requests.restrictions import in_force
from vault.requests.store import RequestConflict
from vault.requests.tables import rights_requests as rr

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


class RequestService:
    """Citizens' rights requests (both sides; officers' steps in vault.requests.handling)."""

    def __init__(
        self,
        engine: Engine,
        dekstore: DekStore,
        catalogue: Catalogue,
        profiles: ProfileService,
        purposes: PurposeService,
        audit: AuditLog,
        clock: Clock = utcnow,
    ) -> None:
        self.engine = engine
        self.dekstore = dekstore
        self.catalogue = catalogue
        self.profiles = profiles
        self.purposes = purposes
        self.audit = audit
        self.clock = clock

    @contextmanager
    def refusals_audited(self, actor: Actor, event: Event) -> Iterator[None]:
        """A refused step leaves an event too (its own transaction), with the reason."""
        try:
            yield
        except AuditUnavailable:
            raise
        except VaultError as exc:
            reason = getattr(exc, "reason", None) or reason_code(exc)
            outcome = "denied" if isinstance(exc, (Refused, RequestConflict)) else "failed"
            self.audit.record(actor, replace(event, outcome=outcome, reason=str(reason)[:100]))
            raise

    # -- submit -----------------------------------------------------------------------------
    def submit(
        self,
        actor: Actor,
        citizen_id: str,
        kind: str,
        *,
        changes: Mapping[str, object] | None = None,
        purposes: Sequence[str] | None = None,
        message: str | None = None,
    ) -> RightsRequest:
        """Record a request (submitted, then verified: the citizen signed in as themselves)."""
        event = Event("requests.submit", citizen_id=citizen_id, fields=sorted(changes or {}), reason=kind)
        with self.refusals_audited(actor, event):
            return self._submit(actor, citizen_id, kind, dict(changes or {}), list(purposes or []), message, event)

    def _check(
        self, kind: str, changes: dict[str, object], purposes: list[str], message: str | None
    ) -> tuple[str, dict[str, Any]]:
        """(scope, detail) of a well-formed request; ValidationFailed or Refused otherwise."""
        if kind not in KINDS:
            raise ValidationFailed({"kind": f"one of {', '.join(KINDS)}"})
        if message is not None and len(message) > MAX_MESSAGE:
            raise ValidationFailed({"message": f"at most {MAX_MESSAGE} characters"})
        if kind == "rectification":
            if not changes:
                raise ValidationFailed({"fields": "name at least one field and its proposed value"})
            self.catalogue.check_names(list(changes))
            clean = self.catalogue.validate(changes, creating=False)
            return ",".join(sorted(clean)), {"fields": sorted(clean)}
        if changes:
            raise ValidationFailed({"fields": f"only a rectification names field values, not {kind}"})
        if kind in ("restriction", "objection"):
            if not purposes or len(purposes) > 20:
                raise ValidationFailed({"purposes": "name 1-20 purposes"})
            bases = {}
            for code in sorted(set(purposes)):
                try:
                    bases[code] = self.purposes.get(code).lawful_basis
                except NotFound:
                    raise ValidationFailed({"purposes": "unknown purpose"}) from None
            if kind == "objection":
                _objection_allowed(bases)
            return ",".join(sorted(bases)), {"purposes": sorted(bases), "bases": bases}
        if purposes:
            raise ValidationFailed({"purposes": f"only restriction and objection name purposes, not {kind}"})
        return "", {}

    def _submit(
        self,
        actor: Actor,
        citizen_id: str,
        kind: str,
        changes: dict[str, object],
        purposes: list[str],
        message: str | None,
        event: Event,
    ) -> RightsRequest:
        scope, detail = self._check(kind, changes, purposes, message)
        cid = uuid.UUID(citizen_id)
        now = self.clock()
        at = iso(now)
        request_id = str(uuid.uuid4())
        with writing(self.engine) as conn:
            sealer = store.cipher(conn, self.dekstore, cid)
            self._no_duplicate(conn, citizen_id, kind, scope)
            agency, proposed = self._route(conn, cid, kind, detail), None
            if kind == "rectification":
                clean = self.catalogue.validate(changes, creating=False)
                blob = json.dumps({n: v for n, v in clean.items()}).encode("utf-8")
                proposed = sealer.encrypt(store.proposed_name(request_id), blob)
            if kind == "erasure":
                detail = self._erasure_preview(conn, cid, now)
            conn.execute(
                insert(rr).values(
                    id=request_id,
                    citizen_id=citizen_id,
                    kind=kind,
                    scope=scope,
                    agency=agency,
                    status="verified",
                    submitted_at=at,
                    due_at=iso(add_months(now, 1)),
                    extensions=0,
                    assignee=None,
                    updated_at=at,
                    detail=json.dumps(detail, sort_keys=True),
                    proposed=proposed,
                    dek_version=sealer.dek_version if proposed is not None else None,
                )
            )
            store.add_history(conn, request_id, "submitted", "submitted", at, actor)
            store.add_history(conn, request_id, "verified", "verified-by-sign-in", at, actor)
            if message:
                store.add_message(conn, sealer, request_id, message, at, "citizen")
            names = sorted(changes) if kind == "rectification" else []
            events = [replace(event, fields=names, reason=f"{kind}:{request_id}")]
            if kind == "access":  # answered by the export the citizen downloads themselves
                conn.execute(
                    rr.update().where(rr.c.id == request_id).values(status="complete", detail='{"answer": "export"}')
                )
                store.add_history(conn, request_id, "complete", "answered-by-export", at, actor)
                events.append(Event("requests.complete", citizen_id=citizen_id, reason=f"access:{request_id}"))
            self.audit.append(conn, actor, events)
        return self.mine(actor, citizen_id, request_id, audited=False)

    def _no_duplicate(self, conn: Connection, citizen_id: str, kind: str, scope: str) -> None:
        """409 when an open request of the kind covers any of the same fields or purposes (or, for a
        restriction or objection, a restriction of one of them is already in force)."""
        wanted = set(scope.split(",")) if scope else {""}
        rows = conn.execute(
            select(rr.c.scope).where(rr.c.citizen_id == citizen_id, rr.c.kind == kind, rr.c.status.in_(OPEN))
        )
        for (other,) in rows:
            if wanted & (set(other.split(",")) if other else {""}):
                raise RequestConflict("duplicate-open-request", f"an open {kind} request already covers this")
        if kind in ("restriction", "objection") and wanted & set(in_force(conn, citizen_id)):
            raise RequestConflict("already-restricted", "processing for this purpose is already restricted")

    def _route(self, conn: Connection, citizen: uuid.UUID, kind: str, detail: dict[str, Any]) -> str:
        """The agency that handles the request."""
        if kind in ("erasure", "access"):
            return ERASURE_AGENCY
        if kind in ("restriction", "objection"):  # the one agency using every named purpose, else the registry
            users = {frozenset(self.purposes.get(code, conn).agencies) for code in detail["purposes"]}
            shared = frozenset.intersection(*users) if users else frozenset()
            return sorted(shared)[0] if len(shared) == 1 else DEFAULT_SOURCE
        text = conn.scalar(select(citizens.c.provenance).where(citizens.c.id == citizen))
        prov = records.decode_provenance(text or "[]")
        names = list(detail["fields"])
        sources = {prov[n].source_agency if n in prov else DEFAULT_SOURCE for n in names}
        if len(sources) > 1:
            raise ValidationFailed({"fields": "these fields come from different agencies: ask for each separately"})
        return sources.pop()

    # -- erasure ----------------------------------------------------------------------------
    def erasure_preview(self, citizen_id: str) -> dict[str, object]:
        """What an erasure would destroy and keep (with the law that keeps it), and whether it is
        blocked now; names and statutes only."""
        with self.engine.connect() as conn:
            return self._erasure_preview(conn, uuid.UUID(citizen_id), self.clock(), check=False)

    def _erasure_preview(
        self, conn: Connection, citizen: uuid.UUID, now: datetime, check: bool = True
    ) -> dict[str, object]:
        row = conn.execute(select(citizens.c.provenance, citizens.c.record).where(citizens.c.id == citizen)).first()
        if row is None:
            raise NotFound("no such citizen")
        held = sorted(records.unpack(citizen, row.record))
        holds = {n: s.legal_hold for n, s in self.catalogue.fields.items() if s.legal_hold}
        blocking = self.blocking_purposes(conn, str(citizen), now)
        if check and blocking:
            raise Refused(
                "erasure-blocked-legal-obligation",
                "your data is being processed under a legal obligation; it cannot be erased until that ends",
            )
        return {
            "erased": [n for n in held if n not in holds],
            "kept": {n: holds[n] for n in held if n in holds},
            "blocked_by": blocking,
        }

    def blocking_purposes(self, conn: Connection, citizen_id: str, now: datetime) -> list[str]:
        """Purposes of active grants on a legal-obligation basis that name the citizen (GDPR Art.
        17(3)(b): erasure does not apply while the law requires the processing)."""
        rows = conn.execute(
            select(grants.c.purpose)
            .join(grant_citizens, grant_citizens.c.grant_id == grants.c.id)
            .where(
                grant_citizens.c.citizen_id == citizen_id,
                grants.c.status == "active",
                grants.c.lawful_basis == "legal-obligation",
                grants.c.expires_at > iso(now),
            )
        )
        return sorted({str(r[0]) for r in rows})

    # -- read, withdraw -----------------------------------------------------------------------
    def of_citizen(self, citizen_id: str) -> list[RightsRequest]:
        """The citizen's requests, newest first (no messages: see :meth:`mine`)."""
        now = iso(self.clock())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(rr).where(rr.c.citizen_id == citizen_id).order_by(rr.c.submitted_at.desc(), rr.c.id)
            )
            return [request_from_row(r, now) for r in rows]

    def mine(self, actor: Actor, citizen_id: str, request_id: str, *, audited: bool = True) -> RightsRequest:
        """One of the citizen's requests with history and messages (another's: NotFound)."""
        return self.load(actor, request_id, lambda r: r.citizen_id == citizen_id, audited)

    def load(
        self, actor: Actor, request_id: str, visible: Callable[[Any], bool], audited: bool = True
    ) -> RightsRequest:
        """A request ``visible`` to the caller, with history and decrypted messages; reading the
        messages is audited (``requests.read``)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(rr).where(rr.c.id == request_id)).first()
            if row is None or not visible(row):
                raise NotFound("no such request")
            found = request_from_row(row, iso(self.clock()))
            done = replace(
                found,
                history=store.history(conn, request_id),
                messages=store.messages(conn, self.dekstore, request_id, row.citizen_id),
            )
        if audited:
            self.audit.record(actor, Event("requests.read", citizen_id=row.citizen_id, reason=f"{row.kind}:{row.id}"))
        return done

    def withdraw(self, actor: Actor, citizen_id: str, request_id: str) -> RightsRequest:
        """Withdraw an open request; for a restriction or objection in force, lift it."""
        event = Event("requests.withdraw", citizen_id=citizen_id)
        with self.refusals_audited(actor, event), writing(self.engine) as conn:
            row = conn.execute(select(rr).where(rr.c.id == request_id, rr.c.citizen_id == citizen_id)).first()
            if row is None:
                raise NotFound("no such request")
            at = iso(self.clock())
            if row.status == "complete" and row.kind in ("restriction", "objection"):
                restrictions.lift(conn, request_id, at)
                store.add_history(conn, request_id, "complete", "lifted", at, actor)
                reason = f"lifted:{request_id}"
            else:
                store.move(conn, row, "withdrawn", at, OPEN)
                store.add_history(conn, request_id, "withdrawn", "withdrawn", at, actor)
                reason = f"{row.kind}:{request_id}"
            self.audit.append(conn, actor, [replace(event, reason=reason)])
        return self.mine(actor, citizen_id, request_id, audited=False)


def _objection_allowed(bases: dict[str, str]) -> None:
    """An objection holds against processing for a public task (GDPR Art. 21(1)); refused with the
    reason otherwise."""
    for code, basis in sorted(bases.items()):
        if basis == "consent":
            raise Refused("objection-consent-basis", f"{code} rests on your consent: withdraw the consent instead")
        if basis != "public-task":
            raise Refused(f"objection-{basis}", f"{code} rests on {basis}: the law overrides an objection")
