"""The purposes registry (admin) and the records of processing (GDPR Art. 30) it yields.

A purpose is versioned: a material change (its wording, categories, statute or retention: what a
citizen agrees to) makes a new version, kept in the append-only ``purpose_versions``. Consents
record the version they were given for, and one given for an older version no longer covers reads
until the citizen confirms it again (vault.consent). Its agencies are not part of the wording:
changing them is no new version (a removed agency's grants are revoked). The lawful basis cannot
change: a different basis is a different purpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.sqlstore import Prepared, writing
from vault.audit.log import Actor, AuditLog, Event, iso
from vault.catalogue import Catalogue
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.grants import cascade
from vault.grants.tables import grants
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
    Column("version", Integer, nullable=False, server_default="1"),
)

# Every version's wording, append-only (triggers in migration v0007): what each consent agreed to.
purpose_versions = Table(
    "purpose_versions",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", String(500), nullable=False),
    Column("categories", Text, nullable=False),
    Column("lawful_basis", String(32), nullable=False),
    Column("statute", String(300), nullable=True),
    Column("retention_days", Integer, nullable=False),
    Column("recorded_at", String(32), nullable=False),
)
MATERIAL = ("description", "categories", "statute", "retention_days")


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
    version: int = 1

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
        int(r.version),
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
        problems = self._problems(description, categories, lawful_basis, statute, retention_days, agencies)
        if not _CODE.fullmatch(code):
            problems["code"] = "3-64 lowercase letters, digits and hyphens, starting with a letter"
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
                        version=1,
                    )
                )
                self._version(conn, purpose)
                self.audit.append(conn, actor, [Event("purposes.create", purpose=code, reason=lawful_basis)])
        except IntegrityError:
            raise Conflict("code", "a purpose with this code exists") from None
        return purpose

    def _problems(
        self,
        description: str,
        categories: Sequence[str],
        lawful_basis: str,
        statute: str | None,
        retention_days: int,
        agencies: Sequence[str],
    ) -> dict[str, str]:
        problems: dict[str, str] = {}
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
        return problems

    def _version(self, conn: Connection, p: Purpose) -> None:
        conn.execute(
            insert(purpose_versions).values(
                code=p.code,
                version=p.version,
                description=p.description,
                categories=json.dumps(p.categories),
                lawful_basis=p.lawful_basis,
                statute=p.statute,
                retention_days=p.retention_days,
                recorded_at=iso(self._clock()),
            )
        )

    def update(
        self,
        code: str,
        *,
        actor: Actor,
        description: str | None = None,
        categories: Sequence[str] | None = None,
        statute: str | None = None,
        retention_days: int | None = None,
        agencies: Sequence[str] | None = None,
    ) -> Purpose:
        """Change a purpose. A material change (MATERIAL) makes a new version, so consents given
        for the old one need the citizen's renewal; live grants that fall outside the changed
        purpose (fields outside its categories, an agency no longer listed) are revoked."""
        with writing(self.engine) as conn:
            # Lock the row before reading it (PostgreSQL; SQLite's write lock is held already): a
            # change that is not material keeps the version, so the version check alone would let a
            # concurrent material change, built from the row read before, undo it.
            conn.execute(select(purposes.c.code).where(purposes.c.code == code).with_for_update())
            old = self.get(code, conn)
            if old.status != "active":
                raise Conflict("purpose", "retired")
            new = replace(
                old,
                description=description.strip() if description is not None else old.description,
                categories=sorted(set(categories)) if categories is not None else old.categories,
                statute=((statute or "").strip() or None) if statute is not None else old.statute,
                retention_days=retention_days if retention_days is not None else old.retention_days,
                agencies=sorted(set(agencies)) if agencies is not None else old.agencies,
            )
            problems = self._problems(
                new.description, new.categories, new.lawful_basis, new.statute, new.retention_days, new.agencies
            )
            if problems:
                raise ValidationFailed(problems)
            material = [name for name in MATERIAL if getattr(new, name) != getattr(old, name)]
            if material:
                new = replace(new, version=old.version + 1)
                self._version(conn, new)
            # Conditional on the version read: a concurrent change makes this a conflict, not a lost update.
            changed = conn.execute(
                update(purposes)
                .where(purposes.c.code == code, purposes.c.version == old.version)
                .values(
                    description=new.description,
                    categories=json.dumps(new.categories),
                    statute=new.statute,
                    retention_days=new.retention_days,
                    agencies=json.dumps(new.agencies),
                    version=new.version,
                )
            ).rowcount
            if changed != 1:
                raise Conflict("purpose", "changed concurrently; retry")
            revoked = self._revoke_outside(conn, new)
            what = ", ".join(material) or "agencies"
            self.audit.append(
                conn,
                actor,
                [Event("purposes.update", purpose=code, reason=f"v{new.version}: {what}; {revoked} grants revoked")],
            )
        return new

    def _revoke_outside(self, conn: Connection, p: Purpose) -> int:
        """Revoke live grants for ``p`` that it no longer covers: fields outside its categories
        (``purpose-narrowed``) or an agency it no longer lists (``purpose-not-for-agency``)."""
        narrowed: list[str] = []
        dropped: list[str] = []
        for g in conn.execute(
            select(grants.c.id, grants.c.agency, grants.c.fields).where(
                grants.c.purpose == p.code, grants.c.status.in_(cascade.LIVE)
            )
        ):
            if g.agency not in p.agencies:
                dropped.append(g.id)
            elif any(self.catalogue.fields[f].category not in p.categories for f in json.loads(g.fields)):
                narrowed.append(g.id)
        return cascade.revoke_ids(conn, "purpose-not-for-agency", dropped) + cascade.revoke_ids(
            conn, "purpose-narrowed", narrowed
        )

    def at_version(self, code: str, version: int, conn: Connection) -> Purpose:
        """The purpose as worded at ``version`` (what a consent of that version agreed to)."""
        current = self.get(code, conn)
        row = conn.execute(
            select(purpose_versions).where(purpose_versions.c.code == code, purpose_versions.c.version == version)
        ).one_or_none()
        if row is None:
            return current
        return replace(
            current,
            description=row.description,
            categories=list(json.loads(row.categories)),
            lawful_basis=row.lawful_basis,
            statute=row.statute,
            retention_days=int(row.retention_days),
            version=version,
        )

    def versions(self, conn: Connection) -> dict[str, int]:
        """The current version of every purpose."""
        return {r.code: int(r.version) for r in conn.execute(select(purposes.c.code, purposes.c.version))}

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
                "version": p.version,
            }
            for p in self.all()
        ]


_BY_CODE = Prepared(select(purposes).where(purposes.c.code == bindparam("code")))  # every grant read
