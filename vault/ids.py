"""Citizen ids: opaque UUIDs that are time-ordered, so inserts append to B-trees instead of scattering.

Random (v4) ids made every insert land on a random page of every index keyed by citizen; at
100,000 profiles that cost more than all the cryptography. Ordered ids reveal roughly when a
profile was created (which created_at stores anyway), never anything about the citizen.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import uuid


def _with_version(raw: bytearray, version: int) -> uuid.UUID:
    raw[6] = (raw[6] & 0x0F) | (version << 4)
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


def new_citizen_id(now_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    raw = bytearray(struct.pack(">Q", ms)[2:] + os.urandom(10))
    return _with_version(raw, 7)


def import_citizen_id(run: uuid.UUID, batch: int, line: int) -> uuid.UUID:
    """Deterministic id for one line of an import run (UUIDv8 layout).

    Bytes 0-5 come from the run id, 6-9 carry the batch number (ordered across batches), the rest
    is a hash of (run, line): ids of one batch are not in line order, so an id says nothing about
    where in the file (which may be sorted by name or national id) the line stood.
    """
    return ImportIds(run, batch)(line)


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """``uuid.UUID(bytes=raw)`` for exactly 16 bytes, without the constructor's argument checks
    (bulk imports make one per line): the same object, ``int`` and ``is_safe`` set as the
    constructor sets them."""
    value = _new_uuid(_UUID)
    _set(value, "int", _int_from_bytes(raw, "big"))
    _set(value, "is_safe", _UNKNOWN)
    return value


_UUID, _UNKNOWN, _new_uuid, _set, _int_from_bytes = (
    uuid.UUID,
    uuid.SafeUUID.unknown,
    object.__new__,
    object.__setattr__,
    int.from_bytes,
)


class ImportIds:
    """:func:`import_citizen_id` for the lines of one batch, with the per-batch part done once."""

    __slots__ = ("_hash", "_head", "_run")

    def __init__(self, run: uuid.UUID, batch: int) -> None:
        self._run = run.bytes
        self._hash = hashlib.sha256(self._run)  # copied per line: cheaper than hashing the run again
        # The version nibble and the variant bits overwrite bits of the batch counter (as
        # _with_version does; batches < 2**28).
        head = bytearray(self._run[:6] + struct.pack(">I", batch))
        head[6] = (head[6] & 0x0F) | (8 << 4)
        head[8] = (head[8] & 0x3F) | 0x80
        self._head = bytes(head)

    def __call__(self, line: int) -> uuid.UUID:
        return uuid_from_bytes(self.raw(line))

    def raw(self, line: int) -> bytes:
        """The 16 bytes of the id of ``line``."""
        h = self._hash.copy()
        h.update(line.to_bytes(8, "big"))
        return self._head + h.digest()[:6]
