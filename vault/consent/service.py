"""Consents: a citizen's decision that an agency may use categories of their data for a purpose.

The current state of each consent is one row in ``consents``; every change (given, changed,
withdrawn) is also a new row in ``consent_versions`` with its signed receipt, never overwritten.
Withdrawing revokes, in the same transaction, every grant that rested on the consent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Index, Integer, String, Table, Text, insert, select, update

from keys.signing import SigningKeyring
from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.consent import receipts
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.grants import cascade
from vault.models import citizens, metadata
from vault.purposes.service import PurposeService

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("citizen_id", String(36), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("categories", Text, nullable=False),  # JSON list
    Column("status", String(16), nullable=False),  # active | withdrawn
    Column("expires_at", String(32), nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_consents_citizen", "citizen_id", "agency", "purpose"),
)

consent_versions = Table(
    "consent_versions",
    metadata,
    Column("consent_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("categories", Text, nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("recorded_at", String(32), nullable=False),
    Column("receipt", Text, nullable=False),  # compact JWS
)


@dataclass(frozen=True)
class Consent:
    """The current state of one consent."""

    id: str
    citizen_id: str
    agency: str
    purpose: str
    categories: list[str]
    status: str  # active | withdrawn | expired (derived from expires_at)
    expires_at: str | None
    version: int
    updated_at: str

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _consent(r: Any, now: str) -> Consent:
    status = r.status
    if status == "active" and r.expires_at is not None and r.expires_at <= now:
        status = "expired"
    return Consent(
        r.id,
        r.citizen_id,
        r.agency,
        r.purpose,
        list(json.loads(r.categories)),
        status,
        r.expires_at,
        int(r.version),
        r.updated_at,
    )


class ConsentService:
    """Give, change, withdraw and list consents; check whether one covers a request."""

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
        """Record consent (a new version when one for this agency and purpose exists)."""
        now = self._clock()
        purpose = self.purposes.get(purpose_code)
        problems: dict[str, str] = {}
        if purpose.status != "active":
            problems["purpose"] = "retired"
        elif purpose.lawful_basis != "consent":
            problems["purpose"] = f"rests on {purpose.lawful_basis}, not on consent"
        if agency not in purpose.agencies:
            problems["agency"] = "this agency may not use this purpose"
        wanted = sorted(set(categories)) if categories else purpose.categories
        if set(wanted) - set(purpose.categories):
            problems["categories"] = f"a subset of the purpose's {purpose.categories}"
        if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
            problems["expires_at"] = "a future time with a zone"
        if problems:
            raise ValidationFailed(problems)
        expiry = iso(expires_at) if expires_at else None
        with writing(self.engine) as conn:
            status = conn.scalar(select(citizens.c.status).where(citizens.c.id == uuid.UUID(citizen_id)))
            if status != "active":
                raise NotFound("no such citizen")
            current = conn.execute(
                select(consents).where(
                    consents.c.citizen_id == citizen_id,
                    consents.c.agency == agency,
                    consents.c.purpose == purpose_code,
                    consents.c.status == "active",
                )
            ).first()
            consent_id = current.id if current else str(uuid.uuid4())
            version = int(current.version) + 1 if current else 1
            values = {
                "citizen_id": citizen_id,
                "agency": agency,
                "purpose": purpose_code,
                "categories": json.dumps(wanted),
                "status": "active",
                "expires_at": expiry,
                "version": version,
                "updated_at": iso(now),
            }
            if current:
                conn.execute(update(consents).where(consents.c.id == consent_id).values(**values))
            else:
                conn.execute(insert(consents).values(id=consent_id, **values))
            self._version(conn, consent_id, values, purpose.public(), now)
            self.audit.append(
                conn,
                actor,
                [Event("consents.give", citizen_id=citizen_id, purpose=purpose_code, reason=f"{agency} v{version}")],
            )
        return self.get(citizen_id, consent_id)

    def _version(
        self, conn: Connection, consent_id: str, values: dict[str, Any], purpose: dict[str, Any], now: datetime
    ) -> None:
        receipt = receipts.receipt(consent_id, values, purpose, now)
        conn.execute(
            insert(consent_versions).values(
                consent_id=consent_id,
                version=values["version"],
                status=values["status"],
                categories=values["categories"],
                expires_at=values["expires_at"],
                recorded_at=iso(now),
                receipt=self.signing.sign_jws(receipt, receipts.TYP),
            )
        )

    def withdraw(self, citizen_id: str, consent_id: str, *, actor: Actor) -> Consent:
        """Withdraw with one call: a new version, and every grant resting on it revoked, atomically."""
        now = self._clock()
        with writing(self.engine) as conn:
            row = conn.execute(
                select(consents).where(consents.c.id == consent_id, consents.c.citizen_id == citizen_id)
            ).one_or_none()
            if row is None:
                raise NotFound("no such consent")
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
            self._version(conn, consent_id, values, self.purposes.get(row.purpose, conn).public(), now)
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
            row = conn.execute(
                select(consents).where(consents.c.id == consent_id, consents.c.citizen_id == citizen_id)
            ).one_or_none()
        if row is None:
            raise NotFound("no such consent")
        return _consent(row, iso(self._clock()))

    def find(self, citizen_id: str | None = None, agency: str | None = None) -> list[Consent]:
        """Consents of a citizen, or an agency's, or both."""
        query = select(consents).order_by(consents.c.updated_at, consents.c.id)
        if citizen_id is not None:
            query = query.where(consents.c.citizen_id == citizen_id)
        if agency is not None:
            query = query.where(consents.c.agency == agency)
        now = iso(self._clock())
        with self.engine.connect() as conn:
            return [_consent(r, now) for r in conn.execute(query.limit(10_000))]

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
            {"version": int(r.version), "status": r.status, "recorded_at": r.recorded_at, "receipt": r.receipt}
            for r in rows
        ]

    def covering(
        self, conn: Connection, citizen_id: str, agency: str, purpose: str, categories: Sequence[str], now: datetime
    ) -> str | None:
        """The id of an active, unexpired consent covering ``categories``, read in ``conn``'s transaction."""
        rows = conn.execute(
            select(consents.c.id, consents.c.categories, consents.c.expires_at).where(
                consents.c.citizen_id == citizen_id,
                consents.c.agency == agency,
                consents.c.purpose == purpose,
                consents.c.status == "active",
            )
        ).all()
        stamp = iso(now)
        for r in rows:
            if (r.expires_at is None or r.expires_at > stamp) and set(categories) <= set(json.loads(r.categories)):
                return str(r.id)
        return None
