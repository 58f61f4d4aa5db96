"""Appending to the audit log, in the caller's transaction: no audit, no data.

A service that reads or changes citizen data calls :meth:`AuditLog.append` with the connection of
its own transaction. The event commits with the access or not at all; if the append fails (the
database refuses, the head record fails its integrity check) the whole transaction fails with
:class:`AuditUnavailable` and the caller returns nothing.

Appends are serialised by the single head row (an UPDATE takes SQLite's write lock or
PostgreSQL's row lock), so under any number of processes the sequence has no gaps and the
chain no forks. Signed checkpoints are written in the same transaction every
``checkpoint_every`` events or ``checkpoint_seconds``, whichever comes first, and on demand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from keys.aead import Mac, constant_time_equal
from keys.anchor import Anchored, AuditAnchor
from keys.audit_signing import AuditSigner
from keys.rowcodec import RowCodec, SharedRows
from keys.sqlstore import Prepared, writing
from vault.audit import chain
from vault.audit.tables import audit_checkpoints, audit_events, audit_head
from vault.errors import AuditUnavailable

OUTCOMES = ("allowed", "denied", "failed")

# The two head statements of every append, compiled once and run on the driver's cursor.
_RESERVE = Prepared(
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(count=audit_head.c.count + bindparam("n"))
    .returning(audit_head.c.count, audit_head.c.head_hash, audit_head.c.mac, audit_head.c.cp_count, audit_head.c.cp_ts)
)
_MOVE_HEAD = Prepared(
    update(audit_head).where(audit_head.c.id == 1).values(head_hash=bindparam("new_hash"), mac=bindparam("new_mac"))
)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and a Z: the stored and hashed form of audit times
    (``%Y-%m-%dT%H:%M:%S.%fZ``, built by isoformat, which costs a fifth of strftime)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=64)
def _parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso` (the newest checkpoint's time, read on every append: parsed once)."""
    if len(text) != 27 or text[-1] != "Z":
        raise ValueError("not an audit time")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    """Who acts: subject, role and agency (from a verified token, or the operator), and the request."""

    subject: str
    role: str
    agency: str
    request_id: str | None = None


@dataclass(frozen=True)
class Event:
    """What happened. Names and ids only: never a field value, token or secret."""

    action: str
    outcome: str = "allowed"
    citizen_id: uuid.UUID | str | None = None
    fields: Sequence[str] = ()
    purpose: str | None = None
    grant_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log held ``count`` events with head hash ``head_hash``."""

    count: int
    head_hash: bytes
    ts: str
    kid: str
    signature: bytes

    def public(self) -> dict[str, Any]:
        """JSON form (exports, API)."""
        return {
            "count": self.count,
            "head_hash": self.head_hash.hex(),
            "ts": self.ts,
            "kid": self.kid,
            "signature": self.signature.hex(),
        }


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def fields_json(fields: Sequence[str]) -> str:
    """The stored and hashed form of an event's field names: a sorted JSON list, names clipped."""
    return json.dumps(sorted({str(f)[:64] for f in fields}), separators=(",", ":"))


def event_values(actor: Actor, event: Event, ts: str, fields_text: str | None = None) -> list[Any]:
    """The hashed columns of one event, in chain.EVENT_COLUMNS order, clipped to column sizes
    (``fields_text``: :func:`fields_json` of the event's fields, when the caller has it already)."""
    if event.outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {event.outcome!r}")
    return [
        ts,
        _clip(actor.subject, 256),
        _clip(actor.role, 32),
        _clip(actor.agency, 64),
        _clip(event.action, 64),
        None if event.citizen_id is None else _clip(str(event.citizen_id), 36),
        fields_json(event.fields) if fields_text is None else fields_text,
        _clip(event.purpose, 64),
        _clip(event.grant_id, 64),
        event.outcome,
        _clip(event.reason, 300),
        _clip(actor.request_id, 64),
    ]


def chain_rows(
    actor: Actor, events: Sequence[Event], ts: str, first: int, prev: bytes
) -> tuple[list[tuple[Any, ...]], bytes]:
    """Rows (seq, hashed columns..., prev_hash, hash) for events appended after ``prev``, and the new
    head hash. The bytes hashed are exactly :func:`chain.canonical` of :func:`event_values`, built
    faster: in a batch only the citizen (and sometimes the fields) differ from event to event, so
    every other column is clipped and encoded once per distinct value."""
    enc = chain.encode_value
    kinds: dict[tuple[Any, ...], tuple[list[Any], str, str]] = {}
    field_texts: dict[tuple[str, ...], tuple[str, str]] = {}
    rows: list[tuple[Any, ...]] = []
    sha256 = hashlib.sha256
    for seq, event in enumerate(events, first):
        kind_key = (event.action, event.purpose, event.grant_id, event.outcome, event.reason)
        kind = kinds.get(kind_key)
        if kind is None:
            values = event_values(actor, replace(event, citizen_id=None), ts, "")
            parts = [enc(v) for v in values]
            kind = kinds[kind_key] = (values, "[" + ",".join(parts[:5]) + ",", "," + ",".join(parts[7:]) + "]")
        values, before, after = kind
        key = tuple(event.fields)
        text = field_texts.get(key)
        if text is None:
            fields = fields_json(key)
            text = field_texts[key] = (fields, enc(fields))
        citizen = None if event.citizen_id is None else str(event.citizen_id)[:36]
        canonical = before + enc(citizen) + "," + text[1] + after
        digest = sha256(prev + canonical.encode("ascii")).digest()
        rows.append((seq, *values[:5], citizen, text[0], *values[7:], prev, digest))
        prev = digest
    return rows, prev


_CHECKPOINTED_IN = "citizen_vault_checkpointed_in"  # conn.info: the transaction that wrote a checkpoint


def anchored(cp: Checkpoint) -> Anchored:
    """A checkpoint in the key store anchor's form."""
    return Anchored(cp.count, cp.head_hash, cp.ts, cp.kid, cp.signature)


class AuditLog:
    """The only writer of audit tables, and only by appending."""

    def __init__(
        self,
        engine: Engine,
        head_key: bytes,
        signer: AuditSigner,
        clock: Callable[[], datetime] | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: int = 300,
        anchor: AuditAnchor | None = None,
    ) -> None:
        self.engine = engine
        # The key store's copy of the newest committed checkpoint (keys/anchor.py): rollback detection.
        self.anchor = anchor
        self.signer = signer
        self._mac = Mac(head_key)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._writers: dict[str, RowCodec] = {}
        self._per_citizen: dict[str, SharedRows] = {}
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds

    def head_mac(self, count: int, head: bytes, cp_count: int) -> bytes:
        """MAC over (count, head hash, newest checkpoint's count) under the provider-derived head key."""
        return self._mac.digest(chain.head_message(count, head, cp_count))

    def ensure_head(self) -> None:
        """Create the head record of an empty log (init)."""
        with writing(self.engine) as conn:
            if conn.scalar(select(audit_head.c.id).where(audit_head.c.id == 1)) is None:
                if conn.scalar(select(audit_events.c.seq).limit(1)) is not None:
                    raise AuditUnavailable("audit events exist but the head record is missing")
                conn.execute(
                    insert(audit_head).values(
                        id=1,
                        count=0,
                        head_hash=chain.GENESIS,
                        mac=self.head_mac(0, chain.GENESIS, 0),
                        cp_count=0,
                        cp_ts=iso(self._clock()),
                    )
                )

    # -- appending --------------------------------------------------------------------------
    def append(self, conn: Connection, actor: Actor, events: Sequence[Event]) -> list[int]:
        """Append ``events`` in the caller's open transaction; returns their sequence numbers."""
        if not events:
            return []
        try:
            return self._append(conn, actor, events)
        except DBAPIError:
            raise AuditUnavailable("the audit log refused the event") from None

    def _append(self, conn: Connection, actor: Actor, events: Sequence[Event]) -> list[int]:
        def write(ts: str, first: int, prev: bytes) -> bytes:
            rows, head = chain_rows(actor, events, ts, first, prev)
            writer = self._writer(conn)
            writer.write(conn, [writer.row(r) for r in rows])
            return head

        return self._extend(conn, len(events), write)

    def append_per_citizen(self, conn: Connection, actor: Actor, event: Event, citizens: Sequence[str]) -> list[int]:
        """Append one ``event`` per citizen id in ``citizens`` (``event.citizen_id`` is replaced), in
        the caller's open transaction; returns their sequence numbers.

        The events are exactly those :meth:`append` would write for ``[replace(event,
        citizen_id=c) for c in citizens]``, built for bulk imports (an event per created profile):
        the columns the events share are clipped, encoded and, on SQLite, bound once."""
        if not citizens:
            return []
        write = functools.partial(self._write_per_citizen, conn, actor, event, citizens)
        try:
            return self._extend(conn, len(citizens), write)
        except DBAPIError:
            raise AuditUnavailable("the audit log refused the event") from None

    def _write_per_citizen(
        self, conn: Connection, actor: Actor, event: Event, citizens: Sequence[str], ts: str, first: int, prev: bytes
    ) -> bytes:
        values = event_values(actor, replace(event, citizen_id=None), ts)
        parts = [chain.encode_value(v) for v in values]
        before = ("[" + ",".join(parts[:5]) + ",").encode("ascii")
        after = ("," + ",".join(parts[6:]) + "]").encode("ascii")
        encode, sha256 = chain.encode_value, hashlib.sha256
        rows: list[tuple[int, str, bytes, bytes]] = []
        for seq, citizen_id in enumerate(citizens, first):
            citizen = str(citizen_id)[:36]
            digest = sha256(prev + before + encode(citizen).encode("ascii") + after).digest()
            rows.append((seq, citizen, prev, digest))
            prev = digest
        shared = dict(zip(chain.EVENT_COLUMNS, values, strict=True))
        del shared["citizen_id"]
        writer = self._per_citizen.get(conn.dialect.name)
        if writer is None:
            writer = self._per_citizen[conn.dialect.name] = self._writer(conn).shared(*shared)
        writer.write(conn, rows, shared)
        return prev

    def _writer(self, conn: Connection) -> RowCodec:
        writer = self._writers.get(conn.dialect.name)
        if writer is None:  # one executemany without SQLAlchemy's per-row bookkeeping (hot on imports)
            writer = self._writers[conn.dialect.name] = RowCodec(audit_events, conn.dialect)
        return writer

    def _extend(self, conn: Connection, n: int, write: Callable[[str, int, bytes], bytes]) -> list[int]:
        """Reserve ``n`` sequence numbers at the head, have ``write(ts, first, prev)`` insert the
        events and return the new head hash, then move the head (and checkpoint when due)."""
        row = _RESERVE.first(conn, {"n": n})
        if row is None:
            raise AuditUnavailable("the audit head record is missing")
        first = int(row[0]) - n + 1  # row.count would be the tuple method
        prev = bytes(row.head_hash)
        if not constant_time_equal(bytes(row.mac), self.head_mac(first - 1, prev, int(row.cp_count))):
            raise AuditUnavailable("the audit head record fails its integrity check")
        now = self._clock()
        ts = iso(now)
        prev = write(ts, first, prev)
        last = first + n - 1
        cp_count = int(row.cp_count)
        head_values: dict[str, Any] = {"head_hash": prev}
        if last - cp_count >= self.checkpoint_every or self._checkpoint_stale(str(row.cp_ts), now):
            self._write_checkpoint(conn, last, prev, ts)
            cp_count = last
            head_values |= {"cp_count": last, "cp_ts": ts}
        head_values["mac"] = self.head_mac(last, prev, cp_count)
        if len(head_values) == 2:
            _MOVE_HEAD.rows(conn, {"new_hash": head_values["head_hash"], "new_mac": head_values["mac"]})
        else:
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(**head_values))
        return list(range(first, last + 1))

    def _checkpoint_stale(self, cp_ts: str, now: datetime) -> bool:
        try:
            last = _parse_iso(cp_ts)
        except ValueError:
            return True
        age = now - last
        return age.total_seconds() >= self.checkpoint_seconds

    def _write_checkpoint(self, conn: Connection, count: int, head: bytes, ts: str) -> Checkpoint:
        # The newest *committed* checkpoint leaves the data store first. Only the first checkpoint
        # of a transaction knows it is looking at one: a second would see the first, uncommitted.
        transaction = conn.get_transaction()
        if self.anchor is not None and conn.info.get(_CHECKPOINTED_IN) is not transaction:
            previous = self.latest_checkpoint(conn)
            if previous is not None:
                self.anchor.advance(anchored(previous))
        conn.info[_CHECKPOINTED_IN] = transaction
        signature = self.signer.sign(chain.checkpoint_message(count, head, ts))
        cp = Checkpoint(count, head, ts, self.signer.kid, signature)
        conn.execute(
            insert(audit_checkpoints).values(count=count, head_hash=head, ts=ts, kid=cp.kid, signature=signature)
        )
        return cp

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction for work that must be audited together with its event."""
        with writing(self.engine) as conn:
            yield conn

    def record(self, actor: Actor, *events: Event) -> list[int]:
        """Append in a transaction of its own (denials, operator actions, registry changes)."""
        with self.transaction() as conn:
            return self.append(conn, actor, events)

    def checkpoint(self) -> Checkpoint:
        """Sign the current head now (no-op when the newest checkpoint already covers it)."""
        try:
            with writing(self.engine) as conn:
                row = conn.execute(
                    update(audit_head)
                    .where(audit_head.c.id == 1)
                    .values(count=audit_head.c.count)
                    .returning(audit_head.c.count, audit_head.c.head_hash, audit_head.c.mac, audit_head.c.cp_count)
                ).one_or_none()
                if row is None:
                    raise AuditUnavailable("the audit head record is missing")
                count, head = int(row._mapping["count"]), bytes(row.head_hash)
                if not constant_time_equal(bytes(row.mac), self.head_mac(count, head, int(row.cp_count))):
                    raise AuditUnavailable("the audit head record fails its integrity check")
                latest = self.latest_checkpoint(conn)
                if latest is not None and latest.count == count:
                    return latest
                ts = iso(self._clock())
                cp = self._write_checkpoint(conn, count, head, ts)
                mac = self.head_mac(count, head, count)
                conn.execute(update(audit_head).where(audit_head.c.id == 1).values(cp_count=count, cp_ts=ts, mac=mac))
                return cp
        except DBAPIError:
            raise AuditUnavailable("the audit log refused the checkpoint") from None

    def latest_checkpoint(self, conn: Connection | None = None) -> Checkpoint | None:
        """The newest checkpoint, if any."""
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.count.desc()).limit(1)
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).one_or_none()
        else:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        return Checkpoint(int(row._mapping["count"]), bytes(row.head_hash), row.ts, row.kid, bytes(row.signature))
