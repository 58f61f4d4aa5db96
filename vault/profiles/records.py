"""Building and opening profile rows: the glue between catalogue, field cipher, key store and tables."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from keys.aead import Mac
from keys.dekstore import DekRef, DekStore
from keys.errors import KeyLayerError
from vault.catalogue import Catalogue, Value
from vault.errors import CannotDecrypt, CitizenErased, NotFound
from vault.fieldcipher import SLOT_PROFILE, FieldCipher, read_header
from vault.models import blind_index, citizens, profile_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provenance:
    """Where a field value came from."""

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
    fields: list[dict[str, Any]]
    index: list[dict[str, Any]]


class Indexer:
    """Blind-index digests, one HMAC key per searchable field, derived by the key provider."""

    def __init__(self, catalogue: Catalogue, dekstore: DekStore) -> None:
        self._catalogue = catalogue
        self._macs: dict[str, Mac] = {
            spec.name: Mac(dekstore.provider.index_key(spec.name)) for spec in catalogue.searchable
        }

    def digest(self, field_name: str, value: Value) -> bytes:
        """HMAC-SHA256 of the normalised value under the field's own key."""
        spec = self._catalogue.fields[field_name]
        return self._macs[field_name].digest(spec.index_form(value))

    def rows(self, citizen: uuid.UUID, values: Mapping[str, Value | None]) -> list[dict[str, Any]]:
        """Index rows for the searchable fields among ``values``."""
        out = []
        for name, value in values.items():
            if value is None or name not in self._macs:
                continue
            out.append(
                {
                    "field": name,
                    "digest": self.digest(name, value),
                    "citizen_id": citizen,
                    "uniq": self._catalogue.fields[name].unique,
                }
            )
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
    cipher = FieldCipher(citizen, dek, SLOT_PROFILE, 1)
    fields = [
        {
            "citizen_id": citizen,
            "field": name,
            "ciphertext": cipher.encrypt(name, catalogue.fields[name].encode(value)),
            "source_agency": agency,
            "updated_at": now,
            "hold_basis": None,
        }
        for name, value in values.items()
        if value is not None
    ]
    row = {
        "id": citizen,
        "status": "active",
        "dek_version": 1,
        "created_at": now,
        "updated_at": now,
        "erased_at": None,
    }
    return PreparedProfile(row, fields, indexer.rows(citizen, values))


def insert_prepared(conn: Connection, batch: list[PreparedProfile]) -> None:
    """Insert many prepared profiles in the caller's transaction (executemany per table)."""
    if not batch:
        return
    conn.execute(insert(citizens), [p.citizen for p in batch])
    field_rows = [f for p in batch for f in p.fields]
    if field_rows:
        conn.execute(insert(profile_fields), field_rows)
    index_rows = [i for p in batch for i in p.index]
    if index_rows:
        conn.execute(insert(blind_index), index_rows)


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


def field_rows(conn: Connection, citizen: uuid.UUID, names: Iterable[str] | None = None) -> list[Row[Any]]:
    """The stored rows of a citizen's fields (all, or the named ones)."""
    query = select(profile_fields).where(profile_fields.c.citizen_id == citizen)
    if names is not None:
        query = query.where(profile_fields.c.field.in_(list(names)))
    return list(conn.execute(query).all())


def open_rows(
    catalogue: Catalogue, dekstore: DekStore, citizen: uuid.UUID, rows: list[Row[Any]]
) -> dict[str, Value]:
    """Decrypt rows, unwrapping each needed DEK once; any failure is one opaque CannotDecrypt."""
    try:
        headers = {r.field: read_header(r.ciphertext) for r in rows}
        refs = {DekRef(citizen, h.slot, h.dek_version) for h in headers.values()}
        deks = dekstore.get_many(refs)
        ciphers = {(ref.slot, ref.version): FieldCipher(citizen, dek, ref.slot, ref.version) for ref, dek in deks.items()}
        out: dict[str, Value] = {}
        for r in rows:
            h = headers[r.field]
            plain = ciphers[(h.slot, h.dek_version)].decrypt(r.field, r.ciphertext)
            out[r.field] = catalogue.fields[r.field].decode(plain)
        return out
    except (KeyLayerError, KeyError, UnicodeDecodeError, ValueError) as exc:
        # The cause is for operators; the caller only learns that it cannot be decrypted.
        log.warning("decryption refused", extra={"citizen_id": str(citizen), "cause": type(exc).__name__})
        raise CannotDecrypt("stored data cannot be decrypted") from None


def replace_fields(
    conn: Connection,
    citizen: uuid.UUID,
    cipher: FieldCipher,
    catalogue: Catalogue,
    indexer: Indexer,
    changes: Mapping[str, Value | None],
    agency: str,
    now: datetime,
) -> None:
    """Write corrections (None removes a field) and keep the blind index in step."""
    names = list(changes)
    conn.execute(
        delete(profile_fields).where(profile_fields.c.citizen_id == citizen, profile_fields.c.field.in_(names))
    )
    conn.execute(delete(blind_index).where(blind_index.c.citizen_id == citizen, blind_index.c.field.in_(names)))
    rows = [
        {
            "citizen_id": citizen,
            "field": name,
            "ciphertext": cipher.encrypt(name, catalogue.fields[name].encode(value)),
            "source_agency": agency,
            "updated_at": now,
            "hold_basis": None,
        }
        for name, value in changes.items()
        if value is not None
    ]
    if rows:
        conn.execute(insert(profile_fields), rows)
    index = indexer.rows(citizen, changes)
    if index:
        conn.execute(insert(blind_index), index)
