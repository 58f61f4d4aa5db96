"""Profile service: create, read (only the fields asked for), correct, look up, rotate a DEK, erase."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from keys.dekstore import DekRef, DekStore
from keys.sqlstore import Prepared, RawUuids, WouldWait, rows_in, writing
from vault.audit.log import Actor, AuditLog, Event
from vault.catalogue import Catalogue, Value
from vault.errors import AuditUnavailable, CannotDecrypt, Conflict, NotFound, ValidationFailed, VaultError
from vault.fieldcipher import SLOT_HOLD, SLOT_INTERACTION, SLOT_PROFILE, FieldCipher
from vault.grants import cascade
from vault.ids import new_citizen_id
from vault.models import blind_index, citizens
from vault.pii.intake import OWN_ENTITY, FieldFindings, Intake, own_values
from vault.profiles import records
from vault.profiles.records import Indexer, Profile, Provenance

Clock = Callable[[], datetime]

# Work done by the vault's operator on the command line (and by tests calling the service directly).
OPERATOR = Actor("operator", "operator", "vault")
# One citizen's stored row (every profile read), run on the driver's cursor: id in the driver's form.
_PROFILE = Prepared(
    select(citizens.c.status, citizens.c.record, citizens.c.provenance).where(citizens.c.id == bindparam("cid"))
)
# Records of a set of citizens (grant reads), ids in the driver's form (RawUuids).
_RECORDS = "SELECT id, status, record FROM citizens WHERE id IN ({})"


def reason_code(exc: Exception) -> str:
    """A short, value-free reason for an audit event: the error's kind (NotFound -> not-found)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did: fields destroyed, and fields kept under a legal hold with their basis."""

    citizen_id: uuid.UUID
    destroyed_fields: list[str]
    held_fields: dict[str, str]
    already_erased: bool


class ProfileService:
    """The only way in or out of stored profiles."""

    def __init__(
        self,
        engine: Engine,
        dekstore: DekStore,
        catalogue: Catalogue,
        audit: AuditLog,
        clock: Clock = utcnow,
        pii_spacy_model: str | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.dekstore = dekstore
        self.catalogue = catalogue
        self.clock = clock
        self.indexer = Indexer(catalogue, dekstore)
        self._unique = {s.name for s in catalogue.searchable if s.unique}
        self.pii = Intake(catalogue, pii_spacy_model)  # free-text screening; Presidio loads on first use

    @contextmanager
    def _failures_audited(self, actor: Actor, event: Event, wait: bool = True) -> Iterator[None]:
        """A refused or failed operation leaves an event too (its own transaction), with the reason.
        Asked not to wait, it leaves nothing and raises WouldWait: the caller's retry, where
        waiting is fine, fails the same way and records it."""
        try:
            yield
        except AuditUnavailable:
            raise
        except VaultError as exc:
            if not wait:
                raise WouldWait from None
            self.audit.record(actor, replace(event, outcome="failed", reason=reason_code(exc)))
            raise

    # -- create -----------------------------------------------------------------------------
    def create(self, fields: Mapping[str, object], agency: str, *, actor: Actor = OPERATOR) -> uuid.UUID:
        """Validate, encrypt and store a new profile and its audit event in one transaction; returns the new id."""
        with self._failures_audited(actor, Event("citizens.create", fields=sorted(map(str, fields)))):
            return self._create(fields, agency, actor)

    def _create(self, fields: Mapping[str, object], agency: str, actor: Actor) -> uuid.UUID:
        values = self.catalogue.validate(fields, creating=True)
        self._check_unique(values)
        values, findings = self.pii.screen(values, own_values(values))
        citizen = new_citizen_id()
        ref = DekRef(citizen, SLOT_PROFILE, 1)
        dek = self.dekstore.create([ref])[ref]
        prepared = records.prepare(self.catalogue, self.indexer, citizen, dek, values, agency, self.clock())
        try:
            with writing(self.engine) as conn:
                records.insert_prepared(conn, [prepared])
                self.pii.store(conn, citizen, values, findings, self.clock())
                self.audit.append(conn, actor, [Event("citizens.create", citizen_id=citizen, fields=sorted(values))])
        except IntegrityError:
            self.dekstore.destroy(citizen)
            raise self._conflict(values) from None
        except BaseException:
            self.dekstore.destroy(citizen)
            raise
        return citizen

    def _check_unique(self, values: Mapping[str, Value | None], exclude: uuid.UUID | None = None) -> None:
        for name in sorted(self._unique):
            value = values.get(name)
            if value is not None and set(self._lookup(name, value)) - {exclude}:
                raise Conflict(name)

    def _conflict(self, values: Mapping[str, Value | None]) -> Conflict:
        names = sorted(n for n in self._unique if values.get(n) is not None)
        return Conflict(names[0] if names else "fields")

    # -- read -------------------------------------------------------------------------------
    def read(
        self,
        citizen: uuid.UUID,
        fields: Sequence[str] | None = None,
        *,
        actor: Actor = OPERATOR,
        action: str = "citizens.read",
        purpose: str | None = None,
        grant_id: str | None = None,
        wait: bool = True,
    ) -> Profile:
        """Decrypt only ``fields`` (all when None). Erased citizens show only legally held fields.

        The read is audited in the same transaction (no audit, no data); a refused read is audited too.
        ``wait=False``: raise keys.sqlstore.WouldWait, having done nothing, rather than wait for the
        write lock (the HTTP layer then runs the read in its threadpool).
        """
        event = Event(action, citizen_id=citizen, fields=list(fields or ()), purpose=purpose, grant_id=grant_id)
        with self._failures_audited(actor, event, wait):
            if fields is not None:
                self.catalogue.check_names(list(fields))
            with writing(self.engine, wait=wait) as conn:
                row = _PROFILE.first(conn, {"cid": RawUuids(conn.dialect).param(citizen.bytes)})
                if row is None:
                    raise NotFound("no such citizen")
                wanted = self.catalogue.fields if fields is None else fields
                opened = records.open_records(
                    self.catalogue, self.dekstore, [(citizen.bytes, bytes(row.record))], wanted
                )
                values = opened[citizen.bytes]
                if values is None:  # logged by open_records; callers learn only that it cannot be read
                    raise CannotDecrypt("stored data cannot be decrypted")
                self.audit.append(conn, actor, [replace(event, fields=sorted(values))])
        prov = records.decode_provenance(row.provenance)
        return Profile(citizen, row.status, values, {n: prov[n] for n in values if n in prov})

    def read_many_in(
        self, conn: Connection, citizen_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Value] | None]:
        """Decrypt ``fields`` of several citizens (ids as canonical text) in the caller's
        transaction (grant reads).

        The caller appends the audit events in that same transaction: no audit, no data. A citizen
        who is gone, erased, or whose data cannot be decrypted maps to None (the others still read).
        Ids travel in the driver's own form (RawUuids): SQLAlchemy's per-value conversions cost more
        than the query itself on pages of thousands.
        """
        ids = RawUuids(conn.dialect)
        raw = {bytes.fromhex(c.replace("-", "")): c for c in citizen_ids}
        stored: list[tuple[bytes, bytes]] = []
        keys = list(raw)
        for start in range(0, len(keys), 2000):
            rows = rows_in(conn, _RECORDS, [ids.param(k) for k in keys[start : start + 2000]])
            stored.extend((ids.value(cid), bytes(record)) for cid, status, record in rows if status == "active")
        opened = records.open_records(self.catalogue, self.dekstore, stored, set(fields))
        return {c: opened.get(k) for k, c in raw.items()}

    # -- lookup -----------------------------------------------------------------------------
    def lookup(self, field: str, value: object, *, actor: Actor = OPERATOR) -> list[uuid.UUID]:
        """Exact match on a searchable field through its blind index; never decrypts. Audited:
        one event per citizen found (a lookup tells the caller that a person is registered)."""
        event = Event("citizens.lookup", fields=[field])
        with self._failures_audited(actor, event):
            found = self._lookup(field, value)
            self.audit.record(actor, *([replace(event, citizen_id=c) for c in found] or [event]))
            return found

    def _lookup(self, field: str, value: object) -> list[uuid.UUID]:
        spec = self.catalogue.spec(field)
        if not spec.searchable:
            raise ValidationFailed({field: "not searchable"})
        try:
            clean = spec.validate_value(value)
        except ValueError as exc:
            raise ValidationFailed({field: str(exc)}) from None
        digest = self.indexer.digest(field, clean)
        with self.engine.connect() as conn:
            ids = conn.scalars(
                select(blind_index.c.citizen_id)
                .where(blind_index.c.field == field, blind_index.c.digest == digest)
                .order_by(blind_index.c.citizen_id)
            )
            return list(ids)

    # -- correct ----------------------------------------------------------------------------
    def correct(
        self, citizen: uuid.UUID, changes: Mapping[str, object], agency: str, *, actor: Actor = OPERATOR
    ) -> None:
        """Apply corrections (a null value removes an optional field) and their audit event in one transaction."""
        event = Event("citizens.correct", citizen_id=citizen, fields=sorted(map(str, changes)))
        with self._failures_audited(actor, event):
            self._correct(citizen, changes, agency, actor, event)

    def _correct(
        self, citizen: uuid.UUID, changes: Mapping[str, object], agency: str, actor: Actor, event: Event
    ) -> None:
        values = self.catalogue.validate(changes, creating=False)
        if not values:
            raise ValidationFailed({"fields": "no fields given"})
        self._check_unique(values, exclude=citizen)
        now = self.clock()
        try:
            with writing(self.engine) as conn:
                row = records.lock_citizen(conn, citizen, now)
                sealed = records.unpack(citizen, row.record)
                prov = records.decode_provenance(row.provenance)
                old = records.open_sealed(
                    self.catalogue,
                    self.dekstore,
                    citizen,
                    {n: sealed[n] for n in self.indexer.searchable(values) if n in sealed},
                )
                self._drop_index(conn, citizen, old)
                findings: dict[str, FieldFindings] = {}
                if self.pii.scanned(values):  # the citizen's own values, decrypted for this scan only
                    mine = {n: sealed[n] for n in OWN_ENTITY if n in sealed and n not in values}
                    own = {**records.open_sealed(self.catalogue, self.dekstore, citizen, mine), **values}
                    values, findings = self.pii.screen(values, own_values(own))
                dek = self.dekstore.get(DekRef(citizen, SLOT_PROFILE, row.dek_version))
                cipher = FieldCipher(citizen, dek, SLOT_PROFILE, row.dek_version)
                for name, value in values.items():
                    if value is None:
                        sealed.pop(name, None)
                        prov.pop(name, None)
                    else:
                        sealed[name] = cipher.encrypt(name, self.catalogue.fields[name].encode(value))
                        prov[name] = Provenance(agency, now)
                records.write_record(conn, citizen, sealed, prov)
                index = self.indexer.rows(citizen, values)
                if index:
                    conn.execute(blind_index.insert(), index)
                self.pii.store(conn, citizen, values, findings, now)
                self.audit.append(conn, actor, [event])
        except IntegrityError:
            raise self._conflict(values) from None

    def _drop_index(self, conn: Connection, citizen: uuid.UUID, values: Mapping[str, Value]) -> None:
        digests = {n: self.indexer.digest(n, v) for n, v in values.items()}
        records.delete_index(conn, citizen, digests, self._unique)

    # -- DEK rotation ----------------------------------------------------------------------
    def rotate_dek(self, citizen: uuid.UUID, *, actor: Actor = OPERATOR) -> int:
        """Re-encrypt one citizen's fields under a fresh DEK; returns the new DEK version."""
        with self._failures_audited(actor, Event("citizens.rotate-dek", citizen_id=citizen)):
            return self._rotate_dek(citizen, actor)

    def _rotate_dek(self, citizen: uuid.UUID, actor: Actor) -> int:
        with self.engine.connect() as conn:
            current = conn.scalar(select(citizens.c.dek_version).where(citizens.c.id == citizen))
        if current is None:
            raise NotFound("no such citizen")
        new_version = int(current) + 1
        # A crash after creating the new key but before the data commit leaves an unused key: drop it.
        self.dekstore.destroy(citizen, SLOT_PROFILE, above_version=int(current))
        new_ref = DekRef(citizen, SLOT_PROFILE, new_version)
        new_dek = self.dekstore.create([new_ref])[new_ref]
        with writing(self.engine) as conn:
            row = records.lock_citizen(conn, citizen, self.clock())
            if row.dek_version != current:
                raise Conflict("dek_version")
            sealed = records.unpack(citizen, row.record)
            values = records.open_sealed(self.catalogue, self.dekstore, citizen, sealed)
            cipher = FieldCipher(citizen, new_dek, SLOT_PROFILE, new_version)
            resealed = {n: cipher.encrypt(n, self.catalogue.fields[n].encode(v)) for n, v in values.items()}
            records.write_record(
                conn, citizen, resealed, records.decode_provenance(row.provenance), dek_version=new_version
            )
            self.audit.append(conn, actor, [Event("citizens.rotate-dek", citizen_id=citizen, fields=sorted(values))])
        self.dekstore.destroy(citizen, SLOT_PROFILE, below_version=new_version)
        return new_version

    # -- erasure ----------------------------------------------------------------------------
    def erase(self, citizen: uuid.UUID, *, actor: Actor = OPERATOR) -> ErasureReport:
        """Crypto-shred a citizen: keep legally held fields under a new hold key, destroy the rest.

        Held fields are re-encrypted and committed before the profile DEK is destroyed, so a crash
        never loses data the law requires; re-running completes the erasure.
        """
        with self._failures_audited(actor, Event("citizens.erase", citizen_id=citizen)):
            return self._erase(citizen, actor)

    def _erase(self, citizen: uuid.UUID, actor: Actor) -> ErasureReport:
        now = self.clock()
        with self.engine.connect() as conn:
            status = conn.scalar(select(citizens.c.status).where(citizens.c.id == citizen))
        if status is None:
            raise NotFound("no such citizen")
        holds = {n: s.legal_hold for n, s in self.catalogue.fields.items() if s.legal_hold}
        if status == "erased":
            self.audit.record(actor, Event("citizens.erase", citizen_id=citizen, reason="already-erased"))
            return self._finish_erasure(citizen, [], {}, already=True)
        self.dekstore.destroy(citizen, SLOT_HOLD)  # a hold key existing now is left over from a crash
        with writing(self.engine) as conn:
            row = records.lock_citizen(conn, citizen, now)
            sealed = records.unpack(citizen, row.record)
            prov = records.decode_provenance(row.provenance)
            wanted = {n: b for n, b in sealed.items() if n in holds or n in self.indexer.searchable([n])}
            try:
                values = records.open_sealed(self.catalogue, self.dekstore, citizen, wanted)
                self._drop_index(conn, citizen, {n: v for n, v in values.items() if n in self.indexer.searchable([n])})
            except CannotDecrypt:
                if any(n in holds for n in sealed):
                    raise  # cannot keep what the law requires: refuse rather than destroy it
                values = {}
                # Without the values there are no digests: fall back to a scan by citizen id.
                conn.execute(delete(blind_index).where(blind_index.c.citizen_id == citizen))
            kept: dict[str, bytes] = {}
            kept_prov: dict[str, Provenance] = {}
            if any(n in holds for n in values):
                ref = DekRef(citizen, SLOT_HOLD, 1)
                hold = FieldCipher(citizen, self.dekstore.create([ref])[ref], SLOT_HOLD, 1)
                for name, value in values.items():
                    if name in holds:
                        kept[name] = hold.encrypt(name, self.catalogue.fields[name].encode(value))
                        p = prov.get(name) or Provenance("unknown", now)
                        kept_prov[name] = Provenance(p.source_agency, p.updated_at, holds[name])
            records.write_record(conn, citizen, kept, kept_prov, status="erased", erased_at=now)
            cascade.revoke(conn, "citizen-erased", citizen_id=str(citizen))
            self.pii.forget(conn, citizen)
            self.audit.append(conn, actor, [Event("citizens.erase", citizen_id=citizen, fields=sorted(sealed))])
        destroyed = sorted(n for n in sealed if n not in kept)
        return self._finish_erasure(citizen, destroyed, {n: p.hold_basis or "" for n, p in kept_prov.items()})

    def _finish_erasure(
        self, citizen: uuid.UUID, destroyed: list[str], held: dict[str, str], already: bool = False
    ) -> ErasureReport:
        self.dekstore.destroy(citizen, SLOT_PROFILE)
        self.dekstore.destroy(citizen, SLOT_INTERACTION)  # their interaction texts (vault/interactions/sealing.py)
        self.dekstore.purge_residue()
        if already:
            with self.engine.connect() as conn:
                text = conn.scalar(select(citizens.c.provenance).where(citizens.c.id == citizen))
            held = {n: p.hold_basis or "" for n, p in records.decode_provenance(text or "{}").items()}
        return ErasureReport(citizen, destroyed, held, already_erased=already)
