"""The purposes registry (admin) and the records of processing (GDPR Art. 30) it yields."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.sqlstore import Prepared, writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.catalogue import Catalogue
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.grants import cascade
from vault.models import metadata

LAWFUL_BASES = ("consent", "legal-obligation", "public-task", "vital-interest")
_CODE = re.compile(r"[a-z][a-z0-9-]{1,62}[a-z0-9]")

purposes = Table(
    "purposes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("description", String(500), nullable=False),
    Column("categories", Text, nullable=False),  # JSON list
    Column("lawful_basis", String(32), nullable=False),
    Column("statute", String(300), nullable=True),
    Column("retention_days", Integer, nullable=False),
    Column("agencies", Text, nullable=False),  # JSON list of agency codes
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", String(32), nullable=False),
)


@dataclass(frozen=True)
class Purpose:
    """A registered reason for processing."""

    code: str
    description: str
    categories: list[str]
    lawful_basis: str
    statute: str | None
    retention_days: int
    agencies: list[str]
    status: str

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _purpose(r: Any) -> Purpose:
    return Purpose(
        r.code,
        r.description,
        list(json.loads(r.categories)),
        r.lawful_basis,
        r.statute,
        int(r.retention_days),
        list(json.loads(r.agencies)),
        r.status,
    )


class PurposeService:
    """Create, list, retire purposes; every change audited in its transaction."""

    def __init__(
        self, engine: Engine, catalogue: Catalogue, audit: AuditLog, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.audit = audit
        self._clock = clock or (lambda: datetime.now(UTC))

    def create(
        self,
        code: str,
        description: str,
        categories: Sequence[str],
        lawful_basis: str,
        statute: str | None,
        retention_days: int,
        agencies: Sequence[str],
        *,
        actor: Actor,
    ) -> Purpose:
        """Register a purpose; a non-consent basis needs the statute that grants it."""
        problems: dict[str, str] = {}
        if not _CODE.fullmatch(code):
            problems["code"] = "3-64 lowercase letters, digits and hyphens, starting with a letter"
        if not description.strip() or len(description) > 500:
            problems["description"] = "1-500 characters"
        known = {s.category for s in self.catalogue.fields.values()}
        if not categories or set(categories) - known:
            problems["categories"] = f"a non-empty subset of {sorted(known)}"
        if lawful_basis not in LAWFUL_BASES:
            problems["lawful_basis"] = f"one of {', '.join(LAWFUL_BASES)}"
        elif lawful_basis != "consent" and not (statute or "").strip():
            problems["statute"] = "a non-consent basis needs the statute reference"
        if not 1 <= retention_days <= 36500:
            problems["retention_days"] = "1-36500"
        if not agencies or any(not _CODE.fullmatch(a) for a in agencies):
            problems["agencies"] = "a non-empty list of agency codes"
        if problems:
            raise ValidationFailed(problems)
        purpose = Purpose(
            code,
            description.strip(),
            sorted(set(categories)),
            lawful_basis,
            (statute or "").strip() or None,
            retention_days,
            sorted(set(agencies)),
            "active",
        )
        try:
            with writing(self.engine) as conn:
                conn.execute(
                    insert(purposes).values(
                        code=code,
                        description=purpose.description,
                        categories=json.dumps(purpose.categories),
                        lawful_basis=lawful_basis,
                        statute=purpose.statute,
                        retention_days=retention_days,
                        agencies=json.dumps(purpose.agencies),
                        status="active",
                        created_at=iso(self._clock()),
                    )
                )
                self.audit.append(conn, actor, [Event("purposes.create", purpose=code, reason=lawful_basis)])
        except IntegrityError:
            raise Conflict("code", "a purpose with this code exists") from None
        return purpose

    def all(self) -> list[Purpose]:
        """Every purpose."""
        with self.engine.connect() as conn:
            return [_purpose(r) for r in conn.execute(select(purposes).order_by(purposes.c.code))]

    def get(self, code: str, conn: Connection | None = None) -> Purpose:
        """One purpose; NotFound when unknown. Pass ``conn`` inside a transaction: a second pooled
        connection taken while holding SQLite's write lock can starve the pool under load."""
        if conn is not None:
            row = _BY_CODE.first(conn, {"code": code})
        else:
            with self.engine.connect() as own:
                row = _BY_CODE.first(own, {"code": code})
        if row is None:
            raise NotFound("no such purpose")
        return _purpose(row)

    def retire(self, code: str, *, actor: Actor) -> Purpose:
        """Retire a purpose: every grant for it is revoked in the same transaction."""
        with writing(self.engine) as conn:
            if conn.execute(update(purposes).where(purposes.c.code == code).values(status="retired")).rowcount != 1:
                raise NotFound("no such purpose")
            revoked = cascade.revoke(conn, "purpose-retired", purpose=code)
            self.audit.append(conn, actor, [Event("purposes.retire", purpose=code, reason=f"{revoked} grants revoked")])
        return self.get(code)

    def records_of_processing(self) -> list[dict[str, Any]]:
        """GDPR Art. 30: per purpose, categories, recipients, lawful basis, retention."""
        return [
            {
                "purpose": p.code,
                "description": p.description,
                "data_categories": p.categories,
                "recipients": p.agencies,
                "lawful_basis": p.lawful_basis,
                "statute": p.statute,
                "retention_days": p.retention_days,
                "status": p.status,
            }
            for p in self.all()
        ]


_BY_CODE = Prepared(select(purposes).where(purposes.c.code == bindparam("code")))  # every grant read
