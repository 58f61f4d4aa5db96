"""Consents: a citizen's decision that an agency may use categories of their data for a purpose.

The current state of each consent is one row in ``consents``; every change (given, changed,
renewed, withdrawn) is also a new row in ``consent_versions`` with its signed receipt, never
overwritten. One citizen, agency and purpose have one consent: giving again, approving a request or
renewing after a purpose change makes a new version of it, even after a withdrawal. Each version
records the purpose version it was given for. Withdrawing revokes, in the same transaction, every
grant that rested on the consent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from keys.signing import SigningKeyring
from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.consent import coverage, receipts
from vault.consent.tables import Consent, consent_from_row, consent_versions, consents
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.grants import cascade
from vault.models import citizens
from vault.purposes.service import Purpose, PurposeService

__all__ = ["Consent", "ConsentPreview", "ConsentService", "consent_versions", "consents"]


@dataclass(frozen=True)
class ConsentPreview:
    """What adding ``categories`` to the citizen's consent would make of it (shown before they
    approve a request): what they hold now (an active, unexpired consent; nothing after a
    withdrawal or expiry), what is added, the result, and its expiry unless they choose another."""

    consent_id: str | None
    purpose_version: int
    purpose_description: str
    held_categories: list[str]
    held_purpose_version: int | None
    added_categories: list[str]
    categories: list[str]
    expires_at: str | None


def _own(conn: Connection, citizen_id: str, consent_id: str) -> Any:
    """The row of one of the citizen's consents; NotFound for another citizen's, exactly like an absent one."""
    row = conn.execute(
        select(consents).where(consents.c.id == consent_id, consents.c.citizen_id == citizen_id)
    ).one_or_none()
    if row is None:
        raise NotFound("no such consent")
    return row


class ConsentService:
    """Give, change, renew, withdraw and list consents; check whether one covers a use."""

    def __init__(
        self,
        engine: Engine,
        purposes: PurposeService,
        signing: SigningKeyring,
        audit: AuditLog,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.purposes = purposes
        self.signing = signing
        self.audit = audit
        self._clock = clock or (lambda: datetime.now(UTC))
        # Who may give a consent for whom (vault/representation: a minor's needs a parent's): called
        # with (citizen, purpose, actor) before anything is written; raises Refused, audited by it.
        self.gate: Callable[[str, str, Actor], None] | None = None

    def give(
        self,
        citizen_id: str,
        agency: str,
        purpose_code: str,
        categories: Sequence[str] | None,
        expires_at: datetime | None,
        *,
        actor: Actor,
    ) -> Consent:
        """Record consent (a new version of the consent for this agency and purpose, if there is one)."""
        now = self._clock()
        purpose = self.purposes.get(purpose_code)
        problems = self._problems(purpose, agency, now, expires_at)
        wanted = sorted(set(categories)) if categories else purpose.categories
        if set(wanted) - set(purpose.categories):
            problems["categories"] = f"a subset of the purpose's {purpose.categories}"
        if problems:
            raise ValidationFailed(problems)
        if self.gate is not None:
            self.gate(citizen_id, purpose.code, actor)
        with writing(self.engine) as conn:
            status = conn.scalar(select(citizens.c.status).where(citizens.c.id == uuid.UUID(citizen_id)))
            if status != "active":
                raise NotFound("no such citizen")
            consent_id = self.record(
                conn, citizen_id, agency, self.purposes.get(purpose_code, conn), wanted, expires_at, now, actor
            )
        return self.get(citizen_id, consent_id)

    @staticmethod
    def _problems(purpose: Purpose, agency: str, now: datetime, expires_at: datetime | None) -> dict[str, str]:
        problems: dict[str, str] = {}
        if purpose.status != "active":
            problems["purpose"] = "retired"
        elif purpose.lawful_basis != "consent":
            problems["purpose"] = f"rests on {purpose.lawful_basis}, not on consent"
        if agency not in purpose.agencies:
            problems["agency"] = "this agency may not use this purpose"
        if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
            problems["expires_at"] = "a future time with a zone"
        return problems

    def _current(self, conn: Connection, citizen_id: str, agency: str, purpose: str) -> Any:
        """The consent row of this citizen, agency and purpose: the active one, else the latest
        (a store from before one chain per purpose may hold a withdrawn row beside a newer one)."""
        rows = conn.execute(
            select(consents)
            .where(consents.c.citizen_id == citizen_id, consents.c.agency == agency, consents.c.purpose == purpose)
            .order_by(consents.c.updated_at, consents.c.id)
        ).all()
        active = [r for r in rows if r.status == "active"]
        return (active or rows)[-1] if rows else None

    def record(
        self,
        conn: Connection,
        citizen_id: str,
        agency: str,
        purpose: Purpose,
        categories: Sequence[str],
        expires_at: datetime | str | None,
        now: datetime,
        actor: Actor,
    ) -> str:
        """A new active version (for the purpose's current version) of the citizen's consent for
        this agency and purpose, in ``conn``'s transaction, with its receipt and audit event; the
        caller has checked the values. Returns the consent's id."""
        # One chain per citizen, agency and purpose: on PostgreSQL two transactions that both found
        # no consent would each start one, so the citizen's row is locked first (SQLite: the write
        # lock serialises writers already, and FOR UPDATE is not rendered).
        conn.execute(select(citizens.c.id).where(citizens.c.id == uuid.UUID(citizen_id)).with_for_update())
        current = self._current(conn, citizen_id, agency, purpose.code)
        expiry = iso(expires_at) if isinstance(expires_at, datetime) else expires_at
        values = {
            "citizen_id": citizen_id,
            "agency": agency,
            "purpose": purpose.code,
            "categories": json.dumps(sorted(set(categories))),
            "status": "active",
            "expires_at": expiry,
            "version": int(current.version) + 1 if current is not None else 1,
            "updated_at": iso(now),
            "purpose_version": purpose.version,
        }
        if current is not None:
            consent_id = str(current.id)
            # Conditional on the version read: a concurrent change makes this a conflict, not a lost update.
            changed = conn.execute(
                update(consents)
                .where(consents.c.id == consent_id, consents.c.version == current.version)
                .values(**values)
            ).rowcount
            if changed != 1:
                raise Conflict("consent", "changed concurrently; retry")
        else:
            consent_id = str(uuid.uuid4())
            conn.execute(insert(consents).values(id=consent_id, **values))
        self._version(conn, consent_id, values, purpose, now)
        reason = f"{agency} v{values['version']} (purpose v{purpose.version})"
        self.audit.append(
            conn, actor, [Event("consents.give", citizen_id=citizen_id, purpose=purpose.code, reason=reason)]
        )
        return consent_id

    def _version(
        self, conn: Connection, consent_id: str, values: dict[str, Any], purpose: Purpose, now: datetime
    ) -> None:
        receipt = receipts.receipt(consent_id, values, purpose.public(), now)
        conn.execute(
            insert(consent_versions).values(
                consent_id=consent_id,
                version=values["version"],
                status=values["status"],
                categories=values["categories"],
                expires_at=values["expires_at"],
                recorded_at=iso(now),
                receipt=self.signing.sign_jws(receipt, receipts.TYP),
                purpose_version=values["purpose_version"],
            )
        )

    def preview(
        self, conn: Connection, citizen_id: str, agency: str, purpose: Purpose, categories: Sequence[str], now: datetime
    ) -> ConsentPreview:
        """What adding ``categories`` would make of the citizen's consent (see ConsentPreview)."""
        current = self._current(conn, citizen_id, agency, purpose.code)
        held: list[str] = []
        expiry: str | None = None
        held_version: int | None = None
        if current is not None and current.status == "active" and (current.expires_at or "~") > iso(now):
            # Categories the purpose no longer lists cannot be kept: the new version is for its current wording.
            held = sorted(set(json.loads(current.categories)) & set(purpose.categories))
            expiry, held_version = current.expires_at, int(current.purpose_version)
        return ConsentPreview(
            str(current.id) if current is not None else None,
            purpose.version,
            purpose.description,
            held,
            held_version,
            sorted(set(categories) - set(held)),
            sorted(set(held) | set(categories)),
            expiry,
        )

    def renew(self, citizen_id: str, consent_id: str, *, actor: Actor) -> Consent:
        """Confirm a consent for the purpose's current version (after a material change): a new
        version with the same categories (those the purpose still lists) and expiry."""
        now = self._clock()
        with writing(self.engine) as conn:
            row = _own(conn, citizen_id, consent_id)
            purpose = self.purposes.get(row.purpose, conn)
            current = consent_from_row(row, iso(now), purpose.version)
            if current.status != "renewal-required":
                raise Conflict("consent", f"{current.status}, nothing to renew (give consent again instead)")
            kept = sorted(set(current.categories) & set(purpose.categories))
            problems = self._problems(purpose, row.agency, now, None)
            if not kept:
                problems["categories"] = "the purpose no longer lists any of them: give consent again"
            if problems:
                raise ValidationFailed(problems)
            self.record(conn, citizen_id, row.agency, purpose, kept, row.expires_at, now, actor)
        return self.get(citizen_id, consent_id)

    def withdraw(self, citizen_id: str, consent_id: str, *, actor: Actor) -> Consent:
        """Withdraw with one call: a new version, and every grant resting on it revoked, atomically."""
        now = self._clock()
        with writing(self.engine) as conn:
            row = _own(conn, citizen_id, consent_id)
            if row.status == "withdrawn":
                raise Conflict("consent", "already withdrawn")
            values = dict(row._mapping) | {
                "status": "withdrawn",
                "version": int(row.version) + 1,
                "updated_at": iso(now),
            }
            values.pop("id")
            # Conditional on the version read: a concurrent change makes this a conflict, not a lost update.
            changed = conn.execute(
                update(consents).where(consents.c.id == consent_id, consents.c.version == row.version).values(**values)
            ).rowcount
            if changed != 1:
                raise Conflict("consent", "changed concurrently; retry")
            # The receipt names the purpose as worded in the version withdrawn.
            purpose = self.purposes.at_version(row.purpose, int(row.purpose_version), conn)
            self._version(conn, consent_id, values, purpose, now)
            revoked = cascade.revoke(conn, "consent-withdrawn", consent_id=consent_id)
            self.audit.append(
                conn,
                actor,
                [
                    Event(
                        "consents.withdraw",
                        citizen_id=citizen_id,
                        purpose=row.purpose,
                        reason=f"{row.agency}; {revoked} grants revoked",
                    )
                ],
            )
        return self.get(citizen_id, consent_id)

    def get(self, citizen_id: str, consent_id: str) -> Consent:
        """One of the citizen's consents."""
        with self.engine.connect() as conn:
            row = _own(conn, citizen_id, consent_id)
            versions = self.purposes.versions(conn)
        return consent_from_row(row, iso(self._clock()), versions.get(row.purpose, 1))

    def find(self, citizen_id: str | None = None, agency: str | None = None) -> list[Consent]:
        """Consents of a citizen, or an agency's, or both."""
        query = select(consents).order_by(consents.c.updated_at, consents.c.id)
        if citizen_id is not None:
            query = query.where(consents.c.citizen_id == citizen_id)
        if agency is not None:
            query = query.where(consents.c.agency == agency)
        now = iso(self._clock())
        with self.engine.connect() as conn:
            versions = self.purposes.versions(conn)
            return [consent_from_row(r, now, versions.get(r.purpose, 1)) for r in conn.execute(query.limit(10_000))]

    def receipts(self, citizen_id: str, consent_id: str) -> list[dict[str, Any]]:
        """Every version of one of the citizen's consents, each with its signed receipt."""
        self.get(citizen_id, consent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consent_versions)
                .where(consent_versions.c.consent_id == consent_id)
                .order_by(consent_versions.c.version)
            ).all()
        return [
            {
                "version": int(r.version),
                "status": r.status,
                "recorded_at": r.recorded_at,
                "purpose_version": int(r.purpose_version),
                "receipt": r.receipt,
            }
            for r in rows
        ]

    def check(
        self,
        conn: Connection,
        citizen_id: str,
        agency: str,
        purpose: Purpose,
        categories: Sequence[str],
        now: datetime,
    ) -> tuple[str | None, str | None]:
        """(id of the consent covering ``categories``, None), or (None, the precise reason it does
        not: consent-withdrawn, -expired, -purpose-changed, -narrowed, -required), read in
        ``conn``'s transaction."""
        rows = conn.execute(
            select(
                consents.c.id,
                consents.c.status,
                consents.c.categories,
                consents.c.expires_at,
                consents.c.purpose_version,
            ).where(
                consents.c.citizen_id == citizen_id, consents.c.agency == agency, consents.c.purpose == purpose.code
            )
        ).all()
        return coverage.judge(rows, categories, purpose.version, iso(now))

    def covering(
        self,
        conn: Connection,
        citizen_id: str,
        agency: str,
        purpose: Purpose,
        categories: Sequence[str],
        now: datetime,
    ) -> str | None:
        """The id of the consent covering ``categories`` (see check), or None."""
        return self.check(conn, citizen_id, agency, purpose, categories, now)[0]
