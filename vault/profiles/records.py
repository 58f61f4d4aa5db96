"""Building and opening stored profiles: the glue between catalogue, field cipher, key store and tables."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, or_, select, update

from keys.aead import Mac
from keys.dekstore import DekRef, DekStore, RawRef
from keys.errors import KeyLayerError
from keys.sqlstore import bulk_insert
from vault.catalogue import Catalogue, Value
from vault.errors import CannotDecrypt, CitizenErased, NotFound
from vault.fieldcipher import (
    SLOT_PROFILE,
    FieldCipher,
    Parsed,
    open_parsed,
    pack_record,
    read_header,
    unpack_record,
    unpack_split,
)
from vault.models import blind_index, citizens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provenance:
    """Where a field value came from, and (after erasure) why it is still kept."""

    source_agency: str
    updated_at: datetime
    hold_basis: str | None = None


@dataclass(frozen=True)
class Profile:
    """Decrypted values of the requested fields, with provenance; never persisted."""

    citizen_id: uuid.UUID
    status: str
    values: dict[str, Value] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)


@dataclass
class PreparedProfile:
    """Rows for one new citizen, ready to insert."""

    citizen: dict[str, Any]
    index: list[dict[str, Any]]


class Indexer:
    """Blind-index digests, one HMAC key per searchable field, derived by the key provider."""

    def __init__(self, catalogue: Catalogue, dekstore: DekStore) -> None:
        self._catalogue = catalogue
        self._macs: dict[str, Mac] = {
            spec.name: Mac(dekstore.provider.index_key(spec.name)) for spec in catalogue.searchable
        }
        self._specs = [(spec.name, self._macs[spec.name], spec) for spec in catalogue.searchable]

    def digest(self, field_name: str, value: Value) -> bytes:
        """HMAC-SHA256 of the normalised value under the field's own key."""
        spec = self._catalogue.fields[field_name]
        return self._macs[field_name].digest(spec.index_form(value))

    def rows(self, citizen: uuid.UUID, values: Mapping[str, Value | None]) -> list[dict[str, Any]]:
        """Index rows for the searchable fields among ``values``."""
        return [
            {"field": name, "digest": digest, "tiebreak": tiebreak, "citizen_id": citizen}
            for name, digest, tiebreak in self.entries(citizen, values)
        ]

    def entries(self, citizen: uuid.UUID, values: Mapping[str, Value | None]) -> list[tuple[str, bytes, bytes]]:
        """(field, digest, tiebreak) of the index rows for the searchable fields among ``values``:
        the tiebreak is empty for a unique field (the primary key then enforces uniqueness)."""
        out = []
        for name, mac, spec in self._specs:  # the searchable fields only (two of nine in the default catalogue)
            value = values.get(name)
            if value is not None:
                out.append((name, mac.digest(spec.index_form(value)), b"" if spec.unique else citizen.bytes))
        return out

    def searchable(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` have a blind index."""
        return [n for n in names if n in self._macs]


def encode_provenance(prov: Mapping[str, Provenance]) -> str:
    """JSON for the provenance column: [[agency, ISO time, hold basis, [fields...]], ...].

    Fields that share a source are grouped (an import writes one group), which keeps the column
    small and cheap to write.
    """
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for name in sorted(prov):
        p = prov[name]
        groups.setdefault((p.source_agency, p.updated_at.isoformat(), p.hold_basis), []).append(name)
    return json.dumps([[a, t, h, names] for (a, t, h), names in groups.items()], separators=(",", ":"))


def decode_provenance(text: str) -> dict[str, Provenance]:
    """Inverse of :func:`encode_provenance`."""
    raw: list[list[Any]] = json.loads(text)
    out: dict[str, Provenance] = {}
    for agency, stamp, hold, names in raw:
        p = Provenance(agency, datetime.fromisoformat(stamp), hold)
        out.update(dict.fromkeys(names, p))
    return out


def prepare(
    catalogue: Catalogue,
    indexer: Indexer,
    citizen: uuid.UUID,
    dek: bytes,
    values: Mapping[str, Value | None],
    agency: str,
    now: datetime,
) -> PreparedProfile:
    """Encrypt a validated profile under its DEK (version 1) into rows."""
    record, provenance = seal(catalogue, citizen, dek, values, agency, now)
    row = {
        "id": citizen,
        "status": NEW_STATUS,
        "dek_version": NEW_DEK_VERSION,
        "record": record,
        "provenance": provenance,
        "created_at": now,
        "updated_at": now,
        "erased_at": None,
    }
    return PreparedProfile(row, indexer.rows(citizen, values))


NEW_STATUS = "active"
NEW_DEK_VERSION = 1


def seal(
    catalogue: Catalogue, citizen: uuid.UUID, dek: bytes, values: Mapping[str, Value | None], agency: str, now: datetime
) -> tuple[bytes, str]:
    """The record (every value sealed under the DEK, version 1) and provenance of a new profile."""
    fields = catalogue.fields
    plaintexts = {n: fields[n].encode(v) for n, v in values.items() if v is not None}
    record = FieldCipher(citizen, dek, SLOT_PROFILE, NEW_DEK_VERSION).seal_record(plaintexts)
    return record, _provenance(agency, now, tuple(sorted(plaintexts)))


@functools.lru_cache(maxsize=1024)
def _provenance(agency: str, now: datetime, names: tuple[str, ...]) -> str:
    """The provenance JSON of a new profile (see encode_provenance): one group, and the same text
    for a whole import batch with the same fields (one string, sent and stored many times)."""
    return json.dumps([[agency, now.isoformat(), None, list(names)]], separators=(",", ":"))


def insert_prepared(conn: Connection, batch: list[PreparedProfile]) -> None:
    """Insert many prepared profiles in the caller's transaction (one executemany per table)."""
    if not batch:
        return
    bulk_insert(conn, citizens, [p.citizen for p in batch])
    bulk_insert(conn, blind_index, [i for p in batch for i in p.index])


def lock_citizen(conn: Connection, citizen: uuid.UUID, now: datetime, allow_erased: bool = False) -> Row[Any]:
    """Take the write lock on a citizen (first statement of a write transaction) and return its row.

    Writing first acquires SQLite's write lock up front (no stale-snapshot upgrade later) and a row
    lock on PostgreSQL, so concurrent corrections, rotations and erasures serialise per citizen.
    """
    conn.execute(update(citizens).where(citizens.c.id == citizen).values(updated_at=now))
    row = conn.execute(select(citizens).where(citizens.c.id == citizen)).one_or_none()
    if row is None:
        raise NotFound("no such citizen")
    if row.status == "erased" and not allow_erased:
        raise CitizenErased("citizen was erased")
    return row


def open_sealed(
    catalogue: Catalogue, dekstore: DekStore, citizen: uuid.UUID, sealed: Mapping[str, bytes]
) -> dict[str, Value]:
    """Decrypt sealed fields, unwrapping each needed DEK once; any failure is one opaque CannotDecrypt."""
    try:
        headers = {name: read_header(blob) for name, blob in sealed.items()}
        refs = {DekRef(citizen, h.slot, h.dek_version) for h in headers.values()}
        deks = dekstore.get_many(refs)
        ciphers = {(r.slot, r.version): FieldCipher(citizen, k, r.slot, r.version) for r, k in deks.items()}
        out: dict[str, Value] = {}
        for name, blob in sealed.items():
            h = headers[name]
            out[name] = catalogue.fields[name].decode(ciphers[(h.slot, h.dek_version)].decrypt(name, blob))
        return out
    except (KeyLayerError, KeyError, UnicodeDecodeError, ValueError) as exc:
        # The cause is for operators; callers only learn that it cannot be decrypted.
        log.warning("decryption refused", extra={"citizen_id": str(citizen), "cause": type(exc).__name__})
        raise CannotDecrypt("stored data cannot be decrypted") from None


def unpack(citizen: uuid.UUID, record: bytes) -> dict[str, bytes]:
    """Split a stored record into sealed fields; a malformed record is CannotDecrypt."""
    try:
        return unpack_record(record)
    except KeyLayerError:
        log.warning("malformed record", extra={"citizen_id": str(citizen)})
        raise CannotDecrypt("stored data cannot be decrypted") from None


def delete_index(conn: Connection, citizen: uuid.UUID, digests: Mapping[str, bytes], unique: set[str]) -> None:
    """Delete the index rows of ``citizen`` for the given field digests (primary-key lookups)."""
    if not digests:
        return
    conds = [
        and_(
            blind_index.c.field == name,
            blind_index.c.digest == digest,
            blind_index.c.tiebreak == (b"" if name in unique else citizen.bytes),
        )
        for name, digest in digests.items()
    ]
    conn.execute(delete(blind_index).where(blind_index.c.citizen_id == citizen, or_(*conds)))


def write_record(
    conn: Connection, citizen: uuid.UUID, sealed: Mapping[str, bytes], prov: Mapping[str, Provenance], **extra: Any
) -> None:
    """Store a citizen's sealed fields and provenance (plus any other column changes)."""
    conn.execute(
        update(citizens)
        .where(citizens.c.id == citizen)
        .values(record=pack_record(dict(sealed)), provenance=encode_provenance(prov), **extra)
    )


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every time the vault stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def open_records(
    catalogue: Catalogue, dekstore: DekStore, stored: Sequence[tuple[bytes, bytes]], only: Collection[str]
) -> dict[bytes, dict[str, Value] | None]:
    """Decrypt the fields in ``only`` of many stored records, given as (citizen id's 16 raw bytes,
    record), with one key-store round trip per 2,000 citizens (bulk grant reads), unwrapping only
    the keys the asked fields need. A citizen whose record or key is malformed or gone maps to None
    (logged once, without values); the others are unaffected."""
    names = {name.encode(): name for name in only}
    opened: dict[bytes, dict[str, Value] | None] = {}
    parsed: list[tuple[bytes, list[Parsed]]] = []
    wanted: set[RawRef] = set()
    for citizen, record in stored:
        try:
            fields = unpack_split(record, names)
        except KeyLayerError as exc:
            opened[citizen] = None
            _refused(citizen, type(exc).__name__)
            continue
        parsed.append((citizen, fields))
        wanted.update([(citizen, slot, version) for _, slot, version, _ in fields])
    deks, failed = dekstore.unwrap_wanted(wanted)
    why = {owner: type(exc).__name__ for (owner, _, _), exc in failed}
    decoders = {name: catalogue.fields[name].decode for name in only}
    for citizen, fields in parsed:
        try:
            plain = open_parsed(citizen, deks, fields)
            opened[citizen] = {f[0]: decoders[f[0]](raw) for f, raw in zip(fields, plain, strict=True)}
        except (KeyLayerError, KeyError, UnicodeDecodeError, ValueError) as exc:
            opened[citizen] = None
            _refused(citizen, why.get(citizen, type(exc).__name__))
    return opened


def _refused(citizen: bytes, cause: str) -> None:
    log.warning("decryption refused", extra={"citizen_id": str(uuid.UUID(bytes=citizen)), "cause": cause})
