"""The audit chain's byte formats: canonical event encoding, chain hash, checkpoint message.

Frozen formats (docs/audit.md): an external verifier re-implements exactly these three functions.

    canonical(event) = JSON array, ASCII only (so CR, LF and every non-ASCII character are escaped),
                       no spaces, in the order of EVENT_COLUMNS; absent values are null
    hash_n           = SHA-256(hash_{n-1} || canonical(event_n)),  hash_0 = 32 zero bytes
    checkpoint msg   = "citizen-vault-audit-checkpoint/1\\n" + JSON [count, head hash hex, time]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

GENESIS = bytes(32)
# Hashed columns, in canonical order. `seq` is not hashed: order is carried by the chain itself,
# and the sequence is checked to run 1..N without gaps separately.
EVENT_COLUMNS = (
    "ts",
    "actor",
    "role",
    "agency",
    "action",
    "citizen_id",
    "fields",
    "purpose",
    "grant_id",
    "outcome",
    "reason",
    "request_id",
)
CHECKPOINT_PREFIX = b"citizen-vault-audit-checkpoint/1\n"


# One encoder, reused: json.dumps with non-default separators builds a new encoder per call,
# which was a fifth of `audit verify`'s time. Same bytes as json.dumps(..., ensure_ascii=True,
# separators=(",", ":")).
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
_encode_str = json.encoder.encode_basestring_ascii


def encode_value(value: Any) -> str:
    """One column's canonical JSON text (a JSON array with these separators is exactly its items'
    encodings joined by commas; strings and nulls, the only hashed types, are encoded directly)."""
    if value is None:
        return "null"
    if type(value) is str:
        return str(_encode_str(value))
    return _ENCODER.encode(value)


def canonical(values: Sequence[Any]) -> bytes:
    """Canonical bytes of one event, ``values`` in EVENT_COLUMNS order."""
    return ("[" + ",".join(map(encode_value, values)) + "]").encode("ascii")


def link(prev: bytes, values: Sequence[Any]) -> bytes:
    """The chain hash of an event following ``prev``."""
    return hashlib.sha256(prev + canonical(values)).digest()


class Linker:
    """:func:`link` for long runs of events (verification walks millions), remembering the canonical
    encodings of values that repeat (actor, action, purpose, outcome, a batch's timestamp); at most
    ``limit`` of them, so unique values (citizen ids) cannot grow it without bound."""

    def __init__(self, limit: int = 100_000) -> None:
        self._memo: dict[Any, str] = {}
        self._limit = limit

    def __call__(self, prev: bytes, values: Sequence[Any]) -> bytes:
        memo = self._memo
        parts = []
        for value in values:
            part = memo.get(value)
            if part is None:
                part = encode_value(value)
                if len(memo) < self._limit:
                    memo[value] = part
            parts.append(part)
        return hashlib.sha256(prev + ("[" + ",".join(parts) + "]").encode("ascii")).digest()


def checkpoint_message(count: int, head: bytes, ts: str) -> bytes:
    """What a checkpoint signature covers."""
    return CHECKPOINT_PREFIX + json.dumps([count, head.hex(), ts], separators=(",", ":")).encode("ascii")


def head_message(count: int, head: bytes, cp_count: int) -> bytes:
    """What the head record's MAC covers: count, head hash, and the count of the newest checkpoint."""
    return b"citizen-vault-audit-head/1\n" + count.to_bytes(8, "big") + head + cp_count.to_bytes(8, "big")
