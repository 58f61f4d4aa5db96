"""Data keys (DEKs): generated here, stored only wrapped by a KEK, in a store of their own.

The key store is a separate database from the data store on purpose: a backup of the data never
carries a wrapped DEK, so erasing a citizen (destroying their DEK here) makes every copy of their
ciphertext unreadable, including copies in backups taken before. See docs/keys.md.

Owners are opaque UUIDs; a DEK is identified by (owner, slot, version). Slots separate
independent keys of one owner (for the vault: "P" profile, "H" legal hold).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)

from keys import aead
from keys.errors import DecryptionFailed, KeyDestroyed, KeyLayerError, UnknownKeyVersion
from keys.provider import KeyProvider
from keys.sqlstore import RawUuids, bulk_insert, checkpoint, rows_in

metadata = MetaData()

data_keys = Table(
    "data_keys",
    metadata,
    Column("owner_id", Uuid, primary_key=True),
    Column("slot", String(1), primary_key=True),
    Column("dek_version", Integer, primary_key=True),
    Column("kek_version", Integer, nullable=False, index=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Every key of a set of owners, ids in the driver's form (see RawUuids): the bulk-read path.
_BY_OWNERS = "SELECT owner_id, slot, dek_version, kek_version, wrapped FROM data_keys WHERE owner_id IN ({})"

_AAD_PREFIX = b"citizen-vault/dek/v1\x00"
_U32 = struct.Struct(">I")


def wrap_aad(owner: uuid.UUID, slot: str, version: int) -> bytes:
    """Associated data binding a wrapped DEK to its owner, slot and version."""
    return raw_aad(owner.bytes, slot, version)


def raw_aad(owner: bytes, slot: str, version: int) -> bytes:
    """:func:`wrap_aad` for an owner given as its 16 raw bytes."""
    return _AAD_PREFIX + owner + slot.encode("ascii") + _U32.pack(version)


RawRef = tuple[bytes, str, int]  # a DEK named by its owner's 16 raw bytes, slot and version


class DekRef(NamedTuple):
    """Which DEK: owner, slot, version (a tuple: hashed and compared in C on bulk reads)."""

    owner: uuid.UUID
    slot: str
    version: int


@dataclass(frozen=True)
class RewrapProgress:
    """One batch of a KEK rotation."""

    rewrapped: int
    failed: int
    cursor: tuple[uuid.UUID, str, int] | None


class DekStore:
    """Create, fetch, destroy and re-wrap data keys."""

    def __init__(self, engine: Engine, provider: KeyProvider) -> None:
        self.engine = engine
        self.provider = provider

    def create(self, refs: Sequence[DekRef]) -> dict[DekRef, bytes]:
        """Generate and store one fresh DEK per ref (committed before returning); returns plaintext DEKs."""
        keys = {ref: aead.new_key() for ref in refs}
        self.store(keys)
        return keys

    def store(self, keys: Mapping[DekRef, bytes]) -> None:
        """Wrap and store DEKs generated elsewhere (bulk import workers), committed before returning."""
        if not keys:
            return
        now = datetime.now(UTC)
        refs = list(keys)
        wrapped = self.provider.wrap_many([(keys[r], wrap_aad(r.owner, r.slot, r.version)) for r in refs])
        rows = [
            {
                "owner_id": ref.owner,
                "slot": ref.slot,
                "dek_version": ref.version,
                "kek_version": kek_version,
                "wrapped": blob,
                "created_at": now,
            }
            for ref, (kek_version, blob) in zip(refs, wrapped, strict=True)
        ]
        with self.engine.begin() as conn:
            bulk_insert(conn, data_keys, rows)

    def get(self, ref: DekRef) -> bytes:
        """Unwrap one DEK; KeyDestroyed when it is gone."""
        found = self.get_many([ref])
        return found[ref]

    def get_many(self, refs: Iterable[DekRef]) -> dict[DekRef, bytes]:
        """Unwrap several DEKs; any missing one raises KeyDestroyed."""
        wanted = set(refs)
        found = self.get_raw({(r.owner.bytes, r.slot, r.version) for r in wanted})
        return {r: found[(r.owner.bytes, r.slot, r.version)] for r in wanted}

    def get_raw(self, wanted: Collection[RawRef]) -> dict[RawRef, bytes]:
        """Unwrap DEKs named by (owner's 16 raw bytes, slot, version), one query per 2,000 owners;
        any missing one raises KeyDestroyed, any that fails to unwrap its KeyLayerError."""
        out, failed = self.unwrap_wanted(wanted)
        if failed:
            raise failed[0][1]
        if len(out) != len(wanted):
            raise KeyDestroyed(f"{len(wanted) - len(out)} data key(s) destroyed or never created")
        return out

    def unwrap_wanted(
        self, wanted: Collection[RawRef]
    ) -> tuple[dict[RawRef, bytes], list[tuple[RawRef, KeyLayerError]]]:
        """The DEKs named in ``wanted`` that exist, unwrapped (one query per 2,000 owners: bulk
        reads), and those that would not unwrap, with why. A missing one (erased) is simply absent;
        no other key of the owners is unwrapped (with an HSM each unwrap is a call to it)."""
        if not wanted:
            return {}, []
        unwrap = self.provider.unwrap
        out: dict[RawRef, bytes] = {}
        failed: list[tuple[RawRef, KeyLayerError]] = []
        for ref, kek_version, wrapped in self._wrapped({owner for owner, _, _ in wanted}):
            if ref in wanted:
                try:
                    out[ref] = unwrap(kek_version, wrapped, raw_aad(*ref))
                except KeyLayerError as exc:
                    failed.append((ref, exc))
        return out, failed

    def _wrapped(self, owners: Collection[bytes]) -> Iterator[tuple[RawRef, int, bytes]]:
        listed = list(owners)
        with self.engine.connect() as conn:
            ids = RawUuids(conn.dialect)
            for start in range(0, len(listed), 2000):
                params = [ids.param(o) for o in listed[start : start + 2000]]
                for stored, slot, version, kek_version, wrapped in rows_in(conn, _BY_OWNERS, params):
                    yield (ids.value(stored), slot, version), kek_version, bytes(wrapped)

    def destroy(
        self,
        owner: uuid.UUID,
        slot: str | None = None,
        below_version: int | None = None,
        above_version: int | None = None,
    ) -> int:
        """Delete an owner's DEKs (all, one slot, or versions below/above one); returns how many."""
        cond = [data_keys.c.owner_id == owner]
        if slot is not None:
            cond.append(data_keys.c.slot == slot)
        if below_version is not None:
            cond.append(data_keys.c.dek_version < below_version)
        if above_version is not None:
            cond.append(data_keys.c.dek_version > above_version)
        with self.engine.begin() as conn:
            count = conn.execute(delete(data_keys).where(and_(*cond))).rowcount
        return int(count or 0)

    def destroy_many(self, owners: Sequence[uuid.UUID]) -> int:
        """Delete every DEK of several owners (orphan clean-up after an interrupted batch)."""
        if not owners:
            return 0
        with self.engine.begin() as conn:
            count = conn.execute(delete(data_keys).where(data_keys.c.owner_id.in_(list(owners)))).rowcount
        return int(count or 0)

    def purge_residue(self) -> None:
        """Make destroyed keys leave no trace in the store's files (SQLite WAL)."""
        checkpoint(self.engine)

    def existing_owners(self, owners: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these owners have at least one DEK."""
        if not owners:
            return set()
        with self.engine.connect() as conn:
            return set(
                conn.scalars(select(data_keys.c.owner_id).where(data_keys.c.owner_id.in_(list(owners))).distinct())
            )

    def existing_refs(self, owners: Collection[bytes]) -> set[RawRef]:
        """Which DEKs of these owners (16 raw bytes each) exist, without unwrapping any (restore
        checks which citizens' keys were destroyed since a backup; docs/operations.md)."""
        return {ref for ref, _, _ in self._wrapped(owners)}

    def count_by_kek_version(self) -> dict[int, int]:
        """How many DEKs each KEK version wraps."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(data_keys.c.kek_version, func.count()).group_by(data_keys.c.kek_version)).all()
        return {int(v): int(n) for v, n in rows}

    def rewrap_batch(self, limit: int, cursor: tuple[uuid.UUID, str, int] | None = None) -> RewrapProgress:
        """Re-wrap up to ``limit`` DEKs not under the active KEK, after ``cursor`` in key order.

        No data is re-encrypted. Each row is updated only if it still holds the wrap we read, so a
        concurrent destroy or rotation is never overwritten. Idempotent: safe to re-run after a crash.
        """
        active = self.provider.active_version()
        pk = tuple_(data_keys.c.owner_id, data_keys.c.slot, data_keys.c.dek_version)
        query = select(
            data_keys.c.owner_id,
            data_keys.c.slot,
            data_keys.c.dek_version,
            data_keys.c.kek_version,
            data_keys.c.wrapped,
        ).where(data_keys.c.kek_version != active)
        if cursor is not None:
            query = query.where(pk > tuple_(*cursor))
        query = query.order_by(data_keys.c.owner_id, data_keys.c.slot, data_keys.c.dek_version).limit(limit)
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            updates = []
            failed = 0
            for owner, slot, version, old_kek, wrapped in rows:
                aad = wrap_aad(owner, slot, version)
                try:
                    dek = self.provider.unwrap(old_kek, wrapped, aad)
                except (UnknownKeyVersion, DecryptionFailed):
                    failed += 1
                    continue
                new_kek, new_wrapped = self.provider.wrap(dek, aad)
                updates.append({"o": owner, "s": slot, "v": version, "old": old_kek, "k": new_kek, "w": new_wrapped})
            if updates:
                stmt = (
                    update(data_keys)
                    .where(
                        data_keys.c.owner_id == bindparam("o"),
                        data_keys.c.slot == bindparam("s"),
                        data_keys.c.dek_version == bindparam("v"),
                        data_keys.c.kek_version == bindparam("old"),
                    )
                    .values(kek_version=bindparam("k"), wrapped=bindparam("w"))
                )
                conn.execute(stmt, updates)
        last = rows[-1] if rows else None
        return RewrapProgress(
            rewrapped=len(updates),
            failed=failed,
            cursor=(last[0], last[1], last[2]) if last is not None else None,
        )
