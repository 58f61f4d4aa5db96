"""Re-walk the audit chain and check every checkpoint; name the first event that does not match.

Kinds of finding (the first one found is reported, with its sequence number):

    edited               an event's content (or its hash) no longer matches what was hashed
    missing              events are gone: a gap in the sequence, a renumbered gap, a truncated tail
    inserted             an event that the chain does not link (forged, or appended behind the head)
    reordered            an event links to a later one: rows were swapped
    checkpoint-mismatch  the chain at a checkpoint's count is not the hash it signed
    bad-checkpoint       a checkpoint's signature does not verify (edited, or an unknown key)
    head-mismatch        the head record fails its MAC, or the tail after the last checkpoint was rewritten

:func:`walk` needs nothing but the rows, the checkpoints and the public keys, so it verifies an
export too; :func:`verify_database` adds the head record, which only the vault can check.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Engine, func, select

from keys.aead import constant_time_equal
from keys.anchor import Anchored
from keys.audit_signing import verify as verify_signature
from keys.sqlstore import make_engine
from vault.audit import chain
from vault.audit.log import AuditLog, Checkpoint, anchored
from vault.audit.tables import audit_checkpoints, audit_events, audit_head

Progress = Callable[[int, int], None]
# From this many events on, verify uses a second process (starting one costs about half a second).
PARALLEL_FROM = 200_000
COLUMNS = [audit_events.c.seq, *(audit_events.c[n] for n in chain.EVENT_COLUMNS)]


@dataclass(frozen=True)
class Finding:
    """The first place where the log does not match."""

    seq: int
    kind: str
    detail: str


@dataclass
class Report:
    """Outcome of a verification."""

    events: int = 0
    checkpoints: int = 0
    head_count: int | None = None
    finding: Finding | None = None
    checkpoint_kids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.finding is None

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "head_count": self.head_count,
            "finding": None if self.finding is None else vars(self.finding),
        }


class Row(NamedTuple):
    """One stored event: sequence, hashed values, previous hash, own hash."""

    seq: int
    values: Sequence[Any]
    prev_hash: bytes
    hash: bytes


def check_checkpoints(checkpoints: Sequence[Checkpoint], public_keys: dict[str, bytes]) -> Finding | None:
    """The first checkpoint whose signature does not verify under the given public keys."""
    for cp in sorted(checkpoints, key=lambda c: c.count):
        key = public_keys.get(cp.kid)
        message = chain.checkpoint_message(cp.count, cp.head_hash, cp.ts)
        if key is None or not verify_signature(key, message, cp.signature):
            why = "unknown signing key" if key is None else "signature does not verify"
            return Finding(cp.count, "bad-checkpoint", f"checkpoint at event {cp.count}: {why}")
    return None


def _classify_break(
    row: Row, nxt: Row | None, prev: bytes, prev_prev: bytes | None, find_hash: Callable[[bytes], int | None]
) -> Finding:
    """Row ``row`` does not link to its predecessor: say why, as precisely as the evidence allows."""
    seq = row.seq
    later = find_hash(row.prev_hash)
    if later is not None and later > seq:
        return Finding(seq, "reordered", f"event {seq} links to event {later}, which comes after it")
    if nxt is not None and nxt.prev_hash == prev:
        return Finding(seq, "inserted", f"event {seq} is not part of the chain: event {nxt.seq} links past it")
    if prev_prev is not None and row.prev_hash == prev_prev:
        return Finding(seq - 1, "inserted", f"event {seq - 1} is not part of the chain: event {seq} links past it")
    if chain.link(row.prev_hash, row.values) != row.hash:
        return Finding(seq, "edited", f"event {seq} does not match its hash (its link was changed)")
    return Finding(seq, "missing", f"the event(s) between {seq - 1} and {seq} are missing (renumbered)")


def walk(
    rows: Iterable[Row],
    checkpoints: Sequence[Checkpoint],
    public_keys: dict[str, bytes],
    *,
    total: int = 0,
    expected_total: int | None = None,
    find_hash: Callable[[bytes], int | None] = lambda _h: None,
    progress: Progress | None = None,
    start: int = 1,
    start_prev: bytes = chain.GENESIS,
    final: bool = True,
) -> Report:
    """Verify rows (ordered by seq) against the chain rule and the signed checkpoints.

    ``start``/``start_prev``: the rows begin at event ``start``, linking to ``start_prev`` (a signed
    checkpoint's hash when another process verifies the part before). ``final``: the rows run to
    the end of the log (a checkpoint beyond them means the log was truncated)."""
    report = Report(checkpoints=len(checkpoints), checkpoint_kids=sorted({c.kid for c in checkpoints}))
    report.finding = check_checkpoints(checkpoints, public_keys)
    if report.finding:
        return report
    at_count = {c.count: c for c in checkpoints}
    link = chain.Linker()
    expected, prev, prev_prev = start, start_prev, None
    it: Iterator[Row] = iter(rows)
    row = next(it, None)
    while row is not None:
        nxt = next(it, None)
        if row.seq != expected:
            report.finding = Finding(expected, "missing", f"events {expected}..{row.seq - 1} are missing")
            return report
        if row.prev_hash != prev:
            report.finding = _classify_break(row, nxt, prev, prev_prev, find_hash)
            if report.finding.kind == "missing" and expected_total is not None and total >= expected_total:
                # Nothing is missing by count: the previous event was edited and re-hashed.
                report.finding = Finding(
                    row.seq - 1, "edited", f"event {row.seq - 1} was changed and its hash recomputed"
                )
            return report
        if link(row.prev_hash, row.values) != row.hash:
            report.finding = Finding(row.seq, "edited", f"event {row.seq} does not match its hash")
            return report
        prev_prev, prev = prev, row.hash
        cp = at_count.get(row.seq)
        if cp is not None and cp.head_hash != prev:
            report.finding = Finding(
                row.seq, "checkpoint-mismatch", f"events up to {row.seq} differ from what checkpoint {cp.count} signed"
            )
            return report
        report.events = row.seq
        if progress is not None and row.seq % 10_000 == 0:
            progress(row.seq, total)
        expected += 1
        row = nxt
    n = expected - 1
    report.events = n
    covered = max(at_count, default=0)
    if final and covered > n:
        report.finding = Finding(n + 1, "missing", f"log truncated: a checkpoint covers {covered} events, {n} remain")
    if progress is not None:
        progress(n, total)
    return report


def load_checkpoints(engine: Engine) -> list[Checkpoint]:
    """Every checkpoint, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.count)).all()
    return [Checkpoint(int(r._mapping["count"]), bytes(r.head_hash), r.ts, r.kid, bytes(r.signature)) for r in rows]


def _stream(engine: Engine, first: int = 1, last: int | None = None) -> Iterator[Row]:
    """Events ``first``..``last`` (to the end when None) in order, straight from the driver's cursor
    (no per-row result objects: this loop runs a million times). PostgreSQL gets a server-side
    cursor so memory stays flat."""
    names = ", ".join(["seq", *chain.EVENT_COLUMNS, "prev_hash", "hash"])
    bounds = f"WHERE seq >= {int(first)}" + ("" if last is None else f" AND seq <= {int(last)}")
    sql = f"SELECT {names} FROM audit_events {bounds} ORDER BY seq"  # noqa: S608 - fixed names, integers
    with engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor(name="cv_audit_verify") if engine.dialect.name == "postgresql" else driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(20_000):
                for r in rows:
                    yield Row(int(r[0]), r[1:13], bytes(r[13]), bytes(r[14]))
        finally:
            cursor.close()


def _hash_finder(engine: Engine) -> Callable[[bytes], int | None]:
    def find_hash(digest: bytes) -> int | None:
        with engine.connect() as conn:
            found = conn.scalar(select(audit_events.c.seq).where(audit_events.c.hash == digest).limit(1))
        return None if found is None else int(found)

    return find_hash


def _split(checkpoints: Sequence[Checkpoint], total: int, parallel_from: int) -> Checkpoint | None:
    """The checkpoint nearest the middle of a log long enough to verify in two processes."""
    if total < parallel_from or not checkpoints:
        return None
    best = min(checkpoints, key=lambda c: abs(c.count - total / 2))
    return best if 0 < best.count < total else None


def _walk_rest(
    url: str,
    cp: Checkpoint,
    checkpoints: list[Checkpoint],
    keys: dict[str, bytes],
    total: int,
    expected: int | None,
    last: int,
) -> Report:
    """The events after checkpoint ``cp`` up to ``last``, verified in a process of their own (see verify_database)."""
    engine = make_engine(url)
    try:
        return walk(
            _stream(engine, cp.count + 1, last),
            checkpoints,
            keys,
            total=total,
            expected_total=expected,
            find_hash=_hash_finder(engine),
            start=cp.count + 1,
            start_prev=cp.head_hash,
        )
    finally:
        engine.dispose()


def _walk_in_two(
    log: AuditLog,
    cp: Checkpoint,
    checkpoints: list[Checkpoint],
    total: int,
    expected: int | None,
    last: int,
    progress: Progress | None,
) -> Report:
    """Events up to ``cp`` here, the rest in a second process starting from the hash ``cp`` signed:
    every event's hash covers its stored link, and the link across the split is the checkpoint's."""
    engine, keys = log.engine, log.signer.public_keys
    url = engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        later = pool.submit(_walk_rest, url, cp, checkpoints, keys, total, expected, last)
        report = walk(
            _stream(engine, 1, cp.count),
            [c for c in checkpoints if c.count <= cp.count],
            keys,
            total=total,
            expected_total=expected,
            find_hash=_hash_finder(engine),
            progress=progress,
            final=False,
        )
        rest = later.result()
    report.checkpoints, report.checkpoint_kids = rest.checkpoints, rest.checkpoint_kids
    if report.ok and report.events < cp.count:  # the first part ended early
        n = report.events
        report.finding = Finding(n + 1, "missing", f"log truncated: a checkpoint covers {cp.count} events, {n} remain")
    elif report.ok:
        report.events, report.finding = rest.events, rest.finding
    if progress is not None:
        progress(report.events, total)
    return report


def verify_database(log: AuditLog, progress: Progress | None = None, parallel_from: int = PARALLEL_FROM) -> Report:
    """Verify the stored log: chain, checkpoints, and the MACed head record. A log of at least
    ``parallel_from`` events is verified in two processes, split at a signed checkpoint."""
    engine = log.engine
    # Read first: a live server keeps advancing the anchor, but never past a checkpoint committed
    # before the head and checkpoints below are read.
    anchor = None if log.anchor is None else log.anchor.get()
    snap = _snapshot(engine)
    total, last = snap.total, snap.last_seq
    # What the snapshot saw, and nothing appended since: a live server keeps appending while this
    # runs, and those events (and checkpoints) belong to the next verification, not to findings.
    # A checkpoint written since covers more events than the head the snapshot read (one that does
    # not, even over a truncated log, is checked as before).
    newer = snap.head_count
    checkpoints = [c for c in load_checkpoints(engine) if newer is None or c.count <= newer]
    head = snap if snap.head_count is not None else None
    expected = snap.head_count
    cp = _split(checkpoints, total, parallel_from)
    if cp is not None:
        report = _walk_in_two(log, cp, checkpoints, total, expected, last, progress)
    else:
        report = walk(
            _stream(engine, 1, last),
            checkpoints,
            log.signer.public_keys,
            total=total,
            expected_total=expected,
            find_hash=_hash_finder(engine),
            progress=progress,
        )
    if head is None:
        if total and report.ok:
            report.finding = Finding(1, "head-mismatch", "the head record is missing")
        return report
    count, head_hash = int(head.head_count or 0), bytes(head.head_hash or b"")
    report.head_count = count
    if not report.ok:
        return report
    cp_count = int(head.cp_count or 0)
    newest = max((c.count for c in checkpoints), default=0)
    if not constant_time_equal(bytes(head.mac or b""), log.head_mac(count, head_hash, cp_count)):
        report.finding = Finding(count, "head-mismatch", "the head record fails its MAC (edited or replaced)")
    elif newest != cp_count:
        report.finding = Finding(
            cp_count or newest,
            "bad-checkpoint",
            f"the head records a checkpoint at event {cp_count}; the newest stored is at {newest} (deleted or forged)",
        )
    elif count > report.events:
        report.finding = Finding(
            report.events + 1, "missing", f"log truncated: the head records {count} events, {report.events} remain"
        )
    elif count < report.events:
        report.finding = Finding(count + 1, "inserted", f"events after {count} were appended behind the head")
    elif report.events and _hash_at(engine, last) != head_hash:
        since = max((c.count for c in checkpoints), default=0) + 1
        report.finding = Finding(
            since, "head-mismatch", f"events from {since} on were rewritten after the last checkpoint"
        )
    elif anchor is not None:
        report.finding = _check_anchor(log, anchor, checkpoints, count)
    return report


def _check_anchor(log: AuditLog, anchor: Anchored, checkpoints: Sequence[Checkpoint], count: int) -> Finding | None:
    """The log must hold the checkpoint anchored in the key store (keys/anchor.py): a log that ends
    before it, or holds another checkpoint at its count, was rolled back."""
    key = log.signer.public_keys.get(anchor.kid)
    message = chain.checkpoint_message(anchor.count, anchor.head_hash, anchor.ts)
    if key is None or not verify_signature(key, message, anchor.signature):
        return Finding(anchor.count, "bad-anchor", "the key store's anchor checkpoint does not verify (edited)")
    if anchor.count > count:
        return Finding(
            count + 1,
            "rolled-back",
            f"the key store anchors a signed checkpoint at event {anchor.count}; the log ends at {count}",
        )
    held = next((c for c in checkpoints if c.count == anchor.count), None)
    if held is None or anchored(held) != anchor:
        return Finding(
            anchor.count,
            "rolled-back",
            f"the log does not hold the checkpoint at event {anchor.count} anchored in the key store",
        )
    return None


class _Snapshot(NamedTuple):
    total: int
    last_seq: int
    head_count: int | None  # the head record's columns; None when it is missing
    head_hash: bytes | None
    cp_count: int | None
    mac: bytes | None


def _snapshot(engine: Engine) -> _Snapshot:
    """The number of events, the last one's seq and the head record, read by one statement, so in
    one snapshot on every database (the head and the events it counts are written together)."""
    head = audit_head.c

    def of_head(column: Any) -> Any:
        return select(column).where(head.id == 1).scalar_subquery()

    statement = select(
        select(func.count()).select_from(audit_events).scalar_subquery(),
        select(func.coalesce(func.max(audit_events.c.seq), 0)).scalar_subquery(),
        of_head(head["count"]),
        of_head(head.head_hash),
        of_head(head.cp_count),
        of_head(head.mac),
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one()
    total, last, count, head_hash, cp_count, mac = row
    return _Snapshot(
        int(total),
        int(last),
        None if count is None else int(count),
        None if head_hash is None else bytes(head_hash),
        None if cp_count is None else int(cp_count),
        None if mac is None else bytes(mac),
    )


def _hash_at(engine: Engine, seq: int) -> bytes:
    """The hash of the last event at or before ``seq``."""
    with engine.connect() as conn:
        value = conn.scalar(
            select(audit_events.c.hash).where(audit_events.c.seq <= seq).order_by(audit_events.c.seq.desc()).limit(1)
        )
    return bytes(value or b"")
