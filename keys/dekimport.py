"""Bulk creation of data keys for imports: wrapped into ready rows, stored with one executemany.

Split from :meth:`keys.dekstore.DekStore.store` so the two halves can run in different processes:
when the KEK provider allows it (``wraps_in_forked_workers``: the KEK is in process memory, which a
forked import worker inherits), the workers wrap the keys they generate and hand over only wrapped
rows; otherwise (an HSM) the workers hand over plaintext keys over a local pipe and the parent
process wraps them. Either way the parent alone writes the key store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from keys.aead import KEY_BYTES
from keys.dekstore import DekStore, data_keys, raw_aad
from keys.rowcodec import RowCodec, memory_temp_store, restore_temp_store


def fresh_keys(count: int) -> list[bytes]:
    """``count`` fresh 256-bit data keys, as many calls of :func:`keys.aead.new_key` would give them
    (the OS CSPRNG), from one draw (a bulk import asks for one per line)."""
    pool = os.urandom(KEY_BYTES * count)
    return [pool[i : i + KEY_BYTES] for i in range(0, len(pool), KEY_BYTES)]


class DekRows:
    """Wrap data keys into key-store rows (no database), and insert such rows.

    A row holds what differs from key to key, (owner id, KEK version, wrapped key) in driver form;
    the slot, DEK version and creation time, shared by all keys of one call, are given to
    :meth:`insert` (and bound once per statement on SQLite).
    """

    def __init__(self, store: DekStore) -> None:
        self.store = store
        self.codec = RowCodec(data_keys, store.engine.dialect)
        self.rows = self.codec.shared("slot", "dek_version", "created_at")
        self._owner = self.codec.converter("owner_id")
        self._time = self.codec.converter("created_at")

    @property
    def in_workers(self) -> bool:
        """Whether forked workers may wrap (the provider's KEK is in process memory)."""
        return self.store.provider.wraps_in_forked_workers

    def wrap(self, keys: Sequence[tuple[uuid.UUID, bytes]], slot: str, version: int) -> list[Any]:
        """Rows for fresh data keys (owner, plaintext key) of one slot and version, wrapped under the
        active KEK (one provider call for all of them)."""
        to_owner = self._owner
        return self.wrap_raw([(owner.bytes, to_owner(owner), dek) for owner, dek in keys], slot, version)

    def wrap_raw(self, keys: Sequence[tuple[bytes, Any, bytes]], slot: str, version: int) -> list[Any]:
        """:meth:`wrap` for keys given as (owner id's 16 raw bytes, owner id in driver form,
        plaintext key): the same rows, without converting each owner again."""
        if not keys:
            return []
        wrapped = self.store.provider.wrap_many([(dek, raw_aad(raw, slot, version)) for raw, _, dek in keys])
        return [(owner, kek_version, blob) for (_, owner, _), (kek_version, blob) in zip(keys, wrapped, strict=True)]

    def owner(self, row: Any) -> Any:
        """The owner id of a row, in the driver's form."""
        return self.rows.value(row, "owner_id")

    def insert(self, rows: Sequence[Any], slot: str, version: int, now: datetime) -> None:
        """Store rows made by :meth:`wrap` (with the same slot and version), created at ``now``,
        committed before returning."""
        if not rows:
            return
        shared = {"slot": slot, "dek_version": version, "created_at": self._time(now)}
        with self.store.engine.connect() as conn:
            before = memory_temp_store(conn)  # the statement journal in memory, as the data store's writer
            conn.commit()
            try:
                with conn.begin():
                    self.rows.write(conn, rows, shared)
            finally:
                restore_temp_store(conn, before)
                conn.commit()
