"""Profile service: create, read (only the fields asked for), correct, look up, rotate a DEK, erase."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from keys.dekstore import DekRef, DekStore
from vault.catalogue import Catalogue, Value
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.fieldcipher import SLOT_HOLD, SLOT_PROFILE, FieldCipher
from vault.models import blind_index, citizens, profile_fields
from vault.profiles import records
from vault.profiles.records import Indexer, Profile, Provenance

Clock = Callable[[], datetime]


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

    def __init__(self, engine: Engine, dekstore: DekStore, catalogue: Catalogue, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.dekstore = dekstore
        self.catalogue = catalogue
        self.clock = clock
        self.indexer = Indexer(catalogue, dekstore)

    # -- create -----------------------------------------------------------------------------
    def create(self, fields: Mapping[str, object], agency: str) -> uuid.UUID:
        """Validate, encrypt and store a new profile in one transaction; returns the new id."""
        values = self.catalogue.validate(fields, creating=True)
        self._check_unique(values)
        citizen = uuid.uuid4()
        ref = DekRef(citizen, SLOT_PROFILE, 1)
        dek = self.dekstore.create([ref])[ref]
        now = self.clock()
        prepared = records.prepare(self.catalogue, self.indexer, citizen, dek, values, agency, now)
        try:
            with self.engine.begin() as conn:
                records.insert_prepared(conn, [prepared])
        except IntegrityError:
            self.dekstore.destroy(citizen)
            raise self._conflict(values) from None
        except BaseException:
            self.dekstore.destroy(citizen)
            raise
        return citizen

    def _check_unique(self, values: Mapping[str, Value | None], exclude: uuid.UUID | None = None) -> None:
        for spec in self.catalogue.searchable:
            value = values.get(spec.name)
            if spec.unique and value is not None:
                found = set(self.lookup(spec.name, value)) - {exclude}
                if found:
                    raise Conflict(spec.name)

    def _conflict(self, values: Mapping[str, Value | None]) -> Conflict:
        for spec in self.catalogue.searchable:
            if spec.unique and values.get(spec.name) is not None:
                return Conflict(spec.name)
        return Conflict("fields")

    # -- read -------------------------------------------------------------------------------
    def read(self, citizen: uuid.UUID, fields: Sequence[str] | None = None) -> Profile:
        """Decrypt only ``fields`` (all when None). Erased citizens show only legally held fields."""
        if fields is not None:
            self.catalogue.check_names(list(fields))
        with self.engine.connect() as conn:
            row = conn.execute(select(citizens.c.status).where(citizens.c.id == citizen)).one_or_none()
            if row is None:
                raise NotFound("no such citizen")
            rows = records.field_rows(conn, citizen, fields)
        values = records.open_rows(self.catalogue, self.dekstore, citizen, rows)
        provenance = {r.field: Provenance(r.source_agency, _aware(r.updated_at), r.hold_basis) for r in rows}
        return Profile(citizen, row.status, values, provenance)

    def exists(self, citizen: uuid.UUID) -> bool:
        """True when a citizen row exists (active or erased)."""
        with self.engine.connect() as conn:
            return conn.execute(select(citizens.c.id).where(citizens.c.id == citizen)).first() is not None

    # -- lookup -----------------------------------------------------------------------------
    def lookup(self, field: str, value: object) -> list[uuid.UUID]:
        """Exact match on a searchable field through its blind index; never decrypts."""
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
    def correct(self, citizen: uuid.UUID, changes: Mapping[str, object], agency: str) -> None:
        """Apply corrections (a null value removes an optional field) in one transaction."""
        values = self.catalogue.validate(changes, creating=False)
        if not values:
            raise ValidationFailed({"fields": "no fields given"})
        self._check_unique(values, exclude=citizen)
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                row = records.lock_citizen(conn, citizen, now)
                dek = self.dekstore.get(DekRef(citizen, SLOT_PROFILE, row.dek_version))
                cipher = FieldCipher(citizen, dek, SLOT_PROFILE, row.dek_version)
                records.replace_fields(conn, citizen, cipher, self.catalogue, self.indexer, values, agency, now)
        except IntegrityError:
            raise self._conflict(values) from None

    # -- DEK rotation ----------------------------------------------------------------------
    def rotate_dek(self, citizen: uuid.UUID) -> int:
        """Re-encrypt one citizen's fields under a fresh DEK; returns the new DEK version."""
        with self.engine.connect() as conn:
            current = conn.scalar(select(citizens.c.dek_version).where(citizens.c.id == citizen))
        if current is None:
            raise NotFound("no such citizen")
        new_version = int(current) + 1
        # A crash after creating the new key but before the data commit leaves an unused key: drop it.
        self.dekstore.destroy(citizen, SLOT_PROFILE, above_version=int(current))
        new_ref = DekRef(citizen, SLOT_PROFILE, new_version)
        new_dek = self.dekstore.create([new_ref])[new_ref]
        now = self.clock()
        with self.engine.begin() as conn:
            row = records.lock_citizen(conn, citizen, now)
            if row.dek_version != current:
                raise Conflict("dek_version")
            rows = [r for r in records.field_rows(conn, citizen) if r.hold_basis is None]
            values = records.open_rows(self.catalogue, self.dekstore, citizen, rows)
            cipher = FieldCipher(citizen, new_dek, SLOT_PROFILE, new_version)
            for r in rows:
                conn.execute(
                    update(profile_fields)
                    .where(profile_fields.c.citizen_id == citizen, profile_fields.c.field == r.field)
                    .values(ciphertext=cipher.encrypt(r.field, self.catalogue.fields[r.field].encode(values[r.field])))
                )
            conn.execute(update(citizens).where(citizens.c.id == citizen).values(dek_version=new_version))
        self.dekstore.destroy(citizen, SLOT_PROFILE, below_version=new_version)
        return new_version

    # -- erasure ----------------------------------------------------------------------------
    def erase(self, citizen: uuid.UUID) -> ErasureReport:
        """Crypto-shred a citizen: keep legally held fields under a new hold key, destroy the rest.

        Order matters: held fields are re-encrypted and committed before the profile DEK is
        destroyed, so a crash never loses data the law requires; re-running completes the erasure.
        """
        now = self.clock()
        with self.engine.connect() as conn:
            status = conn.scalar(select(citizens.c.status).where(citizens.c.id == citizen))
        if status is None:
            raise NotFound("no such citizen")
        if status == "erased":
            held = self._held(citizen)
            self.dekstore.destroy(citizen, SLOT_PROFILE)
            self.dekstore.purge_residue()
            return ErasureReport(citizen, [], held, already_erased=True)

        holds = {n: s.legal_hold for n, s in self.catalogue.fields.items() if s.legal_hold}
        self.dekstore.destroy(citizen, SLOT_HOLD)  # any hold key now is left over from a crash
        hold_ref = DekRef(citizen, SLOT_HOLD, 1)
        hold_cipher: FieldCipher | None = None
        with self.engine.begin() as conn:
            records.lock_citizen(conn, citizen, now)
            rows = records.field_rows(conn, citizen)
            kept = [r for r in rows if r.field in holds]
            destroyed = sorted(r.field for r in rows if r.field not in holds)
            if kept:
                values = records.open_rows(self.catalogue, self.dekstore, citizen, kept)
                hold_dek = self.dekstore.create([hold_ref])[hold_ref]
                hold_cipher = FieldCipher(citizen, hold_dek, SLOT_HOLD, 1)
                for r in kept:
                    conn.execute(
                        update(profile_fields)
                        .where(profile_fields.c.citizen_id == citizen, profile_fields.c.field == r.field)
                        .values(
                            ciphertext=hold_cipher.encrypt(r.field, self.catalogue.fields[r.field].encode(values[r.field])),
                            hold_basis=holds[r.field],
                        )
                    )
            conn.execute(
                delete(profile_fields).where(
                    profile_fields.c.citizen_id == citizen, profile_fields.c.field.in_(destroyed)
                )
            )
            conn.execute(delete(blind_index).where(blind_index.c.citizen_id == citizen))
            conn.execute(update(citizens).where(citizens.c.id == citizen).values(status="erased", erased_at=now))
        self.dekstore.destroy(citizen, SLOT_PROFILE)
        self.dekstore.purge_residue()
        return ErasureReport(citizen, destroyed, {r.field: holds[r.field] for r in kept}, already_erased=False)

    def _held(self, citizen: uuid.UUID) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(profile_fields.c.field, profile_fields.c.hold_basis).where(
                    profile_fields.c.citizen_id == citizen, profile_fields.c.hold_basis.is_not(None)
                )
            ).all()
        return {f: b for f, b in rows}


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every time the vault stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
