"""Access grants: an agency's permission to read named fields of named citizens for one purpose.

Requesting checks, in order: the purpose exists and is active; the agency may use it; every field
is in the purpose's categories; the citizens exist; the basis holds (an active consent covering the
fields' categories, or the purpose's statutory basis). A single-citizen request lacking consent is
kept as *pending*, which the citizen can approve from their own view.

Reading re-checks everything in one transaction that starts by spending a use with a conditional
UPDATE of the grant row. That row is also what a consent withdrawal or any cascade updates, so a
read that starts after a withdrawal commits finds the grant revoked (SQLite: the write lock;
PostgreSQL: the row lock, re-evaluated after the withdrawal commits). The audit events, one per
citizen read, commit in that same transaction: no audit, no data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from keys.signing import SigningKeyring
from keys.sqlstore import Prepared, WouldWait, writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.catalogue import Value
from vault.consent.service import ConsentService
from vault.errors import NotFound, Refused, ValidationFailed, VaultError
from vault.grants import approval
from vault.grants.approval import KEEP, Keep, PendingRequest
from vault.grants.model import Grant, GrantRequest, grant_from_row
from vault.grants.page_audit import audit_page
from vault.grants.refusals import refused_read_event, why_not
from vault.grants.status import derive
from vault.grants.tables import grant_citizens, grants
from vault.models import agencies, citizens
from vault.pii.intake import OWN_ENTITY, own_values, redact_outside
from vault.profiles.service import ProfileService, reason_code
from vault.purposes.service import Purpose, PurposeService
from vault.requests.restrictions import restricted

__all__ = ["KEEP", "Grant", "GrantRequest", "GrantService", "PendingRequest"]

TYP = approval.TYP

# The statements of a grant read, compiled once and run on the driver's cursor (keys.sqlstore.Prepared).
_SPEND = Prepared(
    update(grants)
    .where(
        grants.c.id == bindparam("grant_id"),
        grants.c.agency == bindparam("b_agency"),
        grants.c.status == "active",
        grants.c.uses < grants.c.max_uses,
        grants.c.expires_at > bindparam("now"),
    )
    .values(uses=grants.c.uses + 1)
    .returning(grants)
)
_AGENCY_STATUS = Prepared(select(agencies.c.status).where(agencies.c.code == bindparam("code")))
_PAGE = Prepared(  # citizen ids are canonical text, so every id sorts after ""
    select(grant_citizens.c.citizen_id)
    .where(grant_citizens.c.grant_id == bindparam("grant_id"), grant_citizens.c.citizen_id > bindparam("after"))
    .order_by(grant_citizens.c.citizen_id)
    .limit(bindparam("limit"))
)
MAX_CITIZENS = 100_000
MAX_DURATION = timedelta(days=366)
QUICK_PAGE = 50  # citizens a read asked not to wait may decrypt (about 3 ms)


class GrantService:
    """Request, inspect, revoke, approve and read through grants."""

    def __init__(
        self,
        engine: Engine,
        profiles: ProfileService,
        purposes: PurposeService,
        consents: ConsentService,
        signing: SigningKeyring,
        audit: AuditLog,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.profiles = profiles
        self.purposes = purposes
        self.consents = consents
        self.signing = signing
        self.audit = audit
        self._clock = clock or (lambda: datetime.now(UTC))

    def categories_of(self, fields: Sequence[str]) -> list[str]:
        """The data categories of ``fields``."""
        return sorted({self.profiles.catalogue.fields[f].category for f in fields})

    def now(self) -> datetime:
        """The service's clock."""
        return self._clock()

    def _refusal_audited(self, actor: Actor, event: Event, exc: VaultError) -> None:
        reason = exc.reason if isinstance(exc, Refused) else reason_code(exc)
        outcome = "denied" if isinstance(exc, Refused) else "failed"
        self.audit.record(actor, replace(event, outcome=outcome, reason=reason))

    # -- request ----------------------------------------------------------------------------
    def request(self, actor: Actor, req: GrantRequest) -> Grant:
        """Check and record a grant; Refused (audited) when a rule says no."""
        event = Event("grants.request", purpose=req.purpose, fields=req.fields)
        try:
            return self._request(actor, req, event)
        except VaultError as exc:
            citizen = req.citizen_ids[0] if len(req.citizen_ids) == 1 else None
            self._refusal_audited(actor, replace(event, citizen_id=citizen), exc)
            raise

    def _check_request(self, actor: Actor, req: GrantRequest) -> Purpose:
        problems: dict[str, str] = {}
        unknown = sorted(set(req.fields) - set(self.profiles.catalogue.fields))
        if not req.fields or unknown:
            problems["fields"] = f"unknown field(s): {', '.join(unknown)}" if unknown else "at least one field"
        if not 1 <= len(req.citizen_ids) <= MAX_CITIZENS:
            problems["citizen_ids"] = f"1-{MAX_CITIZENS} citizens"
        if not 60 <= req.duration_seconds <= MAX_DURATION.total_seconds():
            problems["duration_seconds"] = "60 seconds to 366 days"
        if not 1 <= req.max_uses <= 1_000_000:
            problems["max_uses"] = "1-1000000"
        if problems:
            raise ValidationFailed(problems)
        try:
            purpose = self.purposes.get(req.purpose)
        except NotFound:
            raise NotFound("unknown-purpose: no such purpose") from None
        if purpose.status != "active":
            raise Refused("purpose-retired", "the purpose is retired")
        if actor.agency not in purpose.agencies:
            raise Refused("purpose-not-for-agency", "your agency may not use this purpose")
        outside = sorted(f for f in req.fields if self.profiles.catalogue.fields[f].category not in purpose.categories)
        if outside:
            raise Refused("fields-outside-purpose", f"not within the purpose's categories: {', '.join(outside)}")
        return purpose

    def _request(self, actor: Actor, req: GrantRequest, event: Event) -> Grant:
        purpose = self._check_request(actor, req)
        now = self._clock()
        ids = sorted(set(req.citizen_ids))
        categories = self.categories_of(req.fields)
        grant_id = str(uuid.uuid4())
        with writing(self.engine) as conn:
            found = {
                str(r.id)
                for r in conn.execute(
                    select(citizens.c.id).where(
                        citizens.c.id.in_([uuid.UUID(c) for c in ids]), citizens.c.status == "active"
                    )
                )
            }
            if missing := [c for c in ids if c not in found]:
                raise NotFound(
                    f"no such citizen: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
            basis: dict[str, str | None] = dict.fromkeys(ids)
            status = "active"
            if purpose.lawful_basis == "consent":
                basis = {c: self.consents.covering(conn, c, actor.agency, purpose, categories, now) for c in ids}
                lacking = [c for c, consent in basis.items() if consent is None]
                if lacking and len(ids) > 1:
                    raise Refused("consent-required", f"{len(lacking)} of {len(ids)} citizens have not consented")
                if lacking:
                    status = "pending"
            payload = {
                "iss": "citizen-vault",
                "jti": grant_id,
                "agency": actor.agency,
                "purpose": purpose.code,
                "lawful_basis": purpose.lawful_basis,
                "statute": purpose.statute,
                "fields": sorted(set(req.fields)),
                "citizens": ids if len(ids) <= 100 else {"count": len(ids)},
                "iat": int(now.timestamp()),
                "exp": int((now + timedelta(seconds=req.duration_seconds)).timestamp()),
                "max_uses": req.max_uses,
                "case_ref": req.case_ref,
            }
            conn.execute(
                insert(grants).values(
                    id=grant_id,
                    agency=actor.agency,
                    purpose=purpose.code,
                    fields=json.dumps(sorted(set(req.fields))),
                    lawful_basis=purpose.lawful_basis,
                    status=status,
                    status_reason="consent-required" if status == "pending" else None,
                    expires_at=iso(now + timedelta(seconds=req.duration_seconds)),
                    max_uses=req.max_uses,
                    uses=0,
                    case_ref=req.case_ref,
                    requested_by=actor.subject[:256],
                    created_at=iso(now),
                    citizens=len(ids),
                    jws=self.signing.sign_jws(payload, TYP) if status == "active" else None,
                )
            )
            conn.execute(
                insert(grant_citizens), [{"grant_id": grant_id, "citizen_id": c, "consent_id": basis[c]} for c in ids]
            )
            self.audit.append(
                conn,
                actor,
                [
                    replace(event, citizen_id=c, grant_id=grant_id, reason=None if status == "active" else "pending")
                    for c in ids
                ],
            )
        if status == "pending":
            raise Refused(
                "consent-required",
                "the citizen has not consented; they can approve this request in their own view",
                grant_id=grant_id,
            )
        return self.get(actor.agency, grant_id)

    # -- inspect, revoke, approve ------------------------------------------------------------
    def get(self, agency: str, grant_id: str) -> Grant:
        """A grant of ``agency``, its status as a read now would meet it (vault.grants.status);
        another agency's grant is NotFound, exactly like an absent one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(grants).where(grants.c.id == grant_id, grants.c.agency == agency)).one_or_none()
            if row is None:
                raise NotFound("no such grant")
            return self._derived(conn, grant_from_row(row))

    def _derived(self, conn: Connection, grant: Grant, citizen_id: str | None = None) -> Grant:
        if grant.status not in ("active", "pending"):
            return grant
        version = self.purposes.get(grant.purpose, conn).version
        return derive(conn, grant, self.categories_of(grant.fields), version, self._clock(), citizen_id)

    def revoke(self, actor: Actor, grant_id: str) -> Grant:
        """Revoke one of the actor's agency's grants."""
        with writing(self.engine) as conn:
            row = conn.execute(
                select(grants.c.status).where(grants.c.id == grant_id, grants.c.agency == actor.agency)
            ).one_or_none()
            if row is None:
                raise NotFound("no such grant")
            if row.status in ("pending", "active"):
                conn.execute(
                    update(grants)
                    .where(grants.c.id == grant_id)
                    .values(status="revoked", status_reason="revoked-by-agency")
                )
            self.audit.append(conn, actor, [Event("grants.revoke", grant_id=grant_id)])
        return self.get(actor.agency, grant_id)

    def of_agency(self, agency: str, before: str | None = None, limit: int = 50) -> tuple[list[Grant], str | None]:
        """A page of ``agency``'s grants, newest first, each with its derived status; the cursor of
        the next page (the last grant's id) or None."""
        query = select(grants).where(grants.c.agency == agency).order_by(grants.c.created_at.desc(), grants.c.id.desc())
        with self.engine.connect() as conn:
            if before is not None:
                last = conn.execute(
                    select(grants.c.created_at).where(grants.c.id == before, grants.c.agency == agency)
                ).scalar_one_or_none()
                if last is not None:
                    query = query.where(
                        (grants.c.created_at < last) | ((grants.c.created_at == last) & (grants.c.id < before))
                    )
            rows = conn.execute(query.limit(limit + 1)).all()
            page = [self._derived(conn, grant_from_row(r)) for r in rows[:limit]]
        return page, (page[-1].id if len(rows) > limit else None)

    def pending_for(self, citizen_id: str) -> list[Grant]:
        """Requests waiting for this citizen's consent."""
        return self.about(citizen_id, status="pending")

    def about(self, citizen_id: str, status: str | None = None) -> list[Grant]:
        """Every grant naming this citizen (for their export), or those with ``status``; each one's
        status as it stands for this citizen (their own consent, not their co-citizens')."""
        query = (
            select(grants)
            .join(grant_citizens, grant_citizens.c.grant_id == grants.c.id)
            .where(grant_citizens.c.citizen_id == citizen_id)
            .order_by(grants.c.created_at)
        )
        if status is not None:
            query = query.where(grants.c.status == status)
        with self.engine.connect() as conn:
            return [self._derived(conn, grant_from_row(r), citizen_id) for r in conn.execute(query).all()]

    def requests_for(self, citizen_id: str) -> list[PendingRequest]:
        """Requests waiting for this citizen, each with what approving would make of their consent."""
        return approval.requests_for(self, citizen_id)

    def approve(
        self,
        actor: Actor,
        citizen_id: str,
        grant_id: str,
        expires_at: datetime | Keep | None = KEEP,
        purpose_version: int | None = None,
    ) -> Grant:
        """The citizen approves a pending request: a new version of their consent, then the grant
        (vault.grants.approval)."""
        return approval.approve(self, actor, citizen_id, grant_id, expires_at, purpose_version)

    def decline(self, actor: Actor, citizen_id: str, grant_id: str) -> Grant:
        """The citizen declines a pending request; their consent is unchanged (vault.grants.approval)."""
        return approval.decline(self, actor, citizen_id, grant_id)

    # -- read -------------------------------------------------------------------------------
    def read(
        self, actor: Actor, grant_id: str, after: str | None = None, limit: int = 1000, *, wait: bool = True
    ) -> tuple[Grant, list[tuple[str, dict[str, Value] | None]], str | None]:
        """Spend one use and return the granted fields of (a page of) the grant's citizens.

        ``wait=False``: only a quick read, now. Raises keys.sqlstore.WouldWait, having changed
        nothing, if the write lock is taken or the page holds more than QUICK_PAGE citizens (the HTTP
        layer then runs the read in its threadpool).
        """
        limit = max(1, min(limit, 5000))
        event = Event("grants.read", grant_id=grant_id)
        try:
            return self._read(actor, grant_id, after, limit, event, wait)
        except VaultError as exc:
            if not wait:  # nothing was changed: the caller's retry, where waiting is fine, records it
                raise WouldWait from None
            self._refusal_audited(actor, refused_read_event(self.engine, event, actor.agency, grant_id), exc)
            raise

    def _read(
        self, actor: Actor, grant_id: str, after: str | None, limit: int, event: Event, wait: bool
    ) -> tuple[Grant, list[tuple[str, dict[str, Value] | None]], str | None]:
        now = self._clock()
        with writing(self.engine, wait=wait) as conn:
            spent = _SPEND.first(conn, {"grant_id": grant_id, "b_agency": actor.agency, "now": iso(now)})
            if spent is not None:
                return self._read_spent(conn, actor, grant_from_row(spent), after, limit, event, now, wait)
        # Outside the transaction: on SQLite the failed UPDATE above held the write lock, and
        # why_not records an expiry or exhaustion in a transaction of its own.
        if not wait:
            raise WouldWait
        raise why_not(self.engine, grant_id, actor.agency, now)

    def _read_spent(
        self,
        conn: Connection,
        actor: Actor,
        grant: Grant,
        after: str | None,
        limit: int,
        event: Event,
        now: datetime,
        wait: bool,
    ) -> tuple[Grant, list[tuple[str, dict[str, Value] | None]], str | None]:
        """The rest of a read, in the transaction that spent the use."""
        purpose = self.purposes.get(grant.purpose, conn)
        agency_status = _AGENCY_STATUS.scalar(conn, {"code": grant.agency})
        if purpose.status != "active":
            raise Refused("purpose-retired", "the purpose was retired")
        if agency_status != "active":
            raise Refused("agency-retired", "the agency was retired")
        if grant.agency not in purpose.agencies:
            raise Refused("purpose-not-for-agency", "the purpose no longer lists this agency")
        fetch = limit if wait else min(limit, QUICK_PAGE)  # a quick read looks no further than it may read
        page = [r[0] for r in _PAGE.rows(conn, {"grant_id": grant.id, "after": after or "", "limit": fetch + 1})]
        if len(page) > fetch and fetch < limit:
            raise WouldWait  # more than a quick page: rolls the spent use back; the caller reads again, waiting
        more = len(page) > limit
        page = page[:limit]
        if restricted(conn, page, grant.purpose):  # a citizen's restriction or objection (vault/requests)
            raise Refused("processing-restricted", "a citizen has restricted processing for this purpose")
        if grant.lawful_basis == "consent":
            categories = self.categories_of(grant.fields)
            for c in page:
                _, lapsed = self.consents.check(conn, c, grant.agency, purpose, categories, now)
                if lapsed is not None:
                    raise Refused(lapsed, "a citizen's consent no longer covers this grant")
        free_text = [f for f in grant.fields if self.profiles.catalogue.fields[f].free_text]
        # A note may hold data of categories this purpose may not use: it is redacted of those. The
        # citizen's own identifying values are decrypted for that scan only, and never returned.
        extra = sorted(set(OWN_ENTITY) - set(grant.fields)) if free_text else []
        values = self.profiles.read_many_in(conn, page, [*grant.fields, *extra])
        if free_text:
            detector = self.profiles.pii.detector()
            for record in values.values():
                if record is None:
                    continue
                own = own_values(record)
                for name in extra:
                    record.pop(name, None)
                for name in free_text:
                    text = record.get(name)
                    if isinstance(text, str):
                        record[name] = redact_outside(text, detector, purpose.categories, own)
        records = [(c, values.get(c)) for c in page]
        read = partial(Event, event.action, purpose=grant.purpose, grant_id=grant.id)
        audit_page(self.audit, conn, actor, read, records)
        return grant, records, (page[-1] if more and page else None)
