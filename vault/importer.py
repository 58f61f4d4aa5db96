"""Bulk import of profiles from JSON Lines or CSV: batched, resumable, one transaction per batch.

Resumability: an import run is keyed by (SHA-256 of the file, supplying agency). Each batch commits
its profiles together with the run's checkpoint (last line and batch done), so after a crash (even
SIGKILL) re-running the same command skips what is done and continues. Citizen ids are derived
from (run id, batch, line): the data keys of the batch in flight when the process died are
recognised and dropped before that batch is redone, so no key is orphaned and no profile is
half-written. Rejected lines are reported by line number and field, never with their values.

Speed: validation, screening, encryption, wrapping of the data keys and the encoding of every row
(CPU-bound) run in forked worker processes, a few batches ahead (vault.import_prepare), while this
process, the single writer, inserts the ready rows into the two databases and appends the audit
events. Workers inherit the catalogue and blind-index keys by fork and never touch a
database. They wrap data keys only when the KEK provider keeps its KEK in process memory; with an
HSM the fresh keys travel back over a local pipe (memory only) and are wrapped here.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.dekimport import DekRows
from vault.audit.log import Actor, Event
from vault.errors import VaultError
from vault.fieldcipher import SLOT_PROFILE
from vault.import_prepare import DUPLICATE, ImportRows, PreparedBatch, WorkerState, prepare
from vault.import_source import (
    MAX_LINE_BYTES,
    Batch,
    Format,
    LineError,
    RawItem,
    Span,
    batch_extent,
    batch_items,
    count_lines,
    detect_format,
    file_digest,
    jsonl_spans,
    read_items,
)
from vault.import_wal import ImportWriter
from vault.models import blind_index, import_runs
from vault.profiles.records import NEW_DEK_VERSION
from vault.profiles.service import ProfileService

__all__ = [
    "MAX_LINE_BYTES",
    "Batch",
    "Format",
    "ImportResult",
    "ImportWorkerError",
    "Importer",
    "LineError",
    "PreparedBatch",
    "RawItem",
    "Span",
    "count_lines",
    "detect_format",
    "file_digest",
    "prepare_batch",
    "read_items",
]

log = logging.getLogger(__name__)
Progress = Callable[[int], None]
_TAKEN = "already registered to another citizen"
_CREATED = Event("citizens.create", "allowed")  # the audit event of each imported profile


@dataclass
class ImportResult:
    """Counts of an import run (cumulative over resumptions)."""

    run_id: uuid.UUID
    accepted: int = 0
    rejected: int = 0
    resumed_from_line: int = 0
    batches_done: int = 0
    already_done: bool = False
    errors: list[LineError] = field(default_factory=list)


# Set just before the pool forks (and for inline runs); never pickled.
_WORKER: WorkerState | None = None


def prepare_batch(run: uuid.UUID, batch_no: int, items: Batch, agency: str, now: datetime) -> PreparedBatch:
    """Read (a JSON Lines span), validate, screen, encrypt and encode one batch (runs in a worker
    process, or inline)."""
    assert _WORKER is not None, "worker state not initialised"
    with _collector_paused():
        return prepare(_WORKER, run, batch_no, batch_items(items), agency, now)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch's rows are built or unpickled: tens of
    thousands of new tuples of strings and bytes (no cycles) that it would otherwise scan again and
    again as they pile up. Anything cyclic left behind is collected once it is back on."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _prepare_in_worker(run: uuid.UUID, batch_no: int, items: Batch, agency: str, now: datetime) -> bytes:
    """:func:`prepare_batch` in a worker, its result pickled there. The pool's result thread then
    only moves bytes; unpickling thousands of rows there would hold this process's GIL while the
    writer, which releases it on every row SQLite inserts, waits to get it back."""
    return pickle.dumps(prepare_batch(run, batch_no, items, agency, now), protocol=pickle.HIGHEST_PROTOCOL)


def _collect(job: AsyncResult[bytes]) -> PreparedBatch:
    """A worker's result. A failure is re-raised without its message: multiprocessing puts the
    whole unsendable result (data keys included) into the text of its errors."""
    try:
        data = job.get()
        with _collector_paused():
            batch: PreparedBatch = pickle.loads(data)  # noqa: S301 - from our own forked worker (the pool unpickles anyway)
        return batch
    except Exception as exc:
        log.error("import worker failed", extra={"cause": type(exc).__name__})
        raise ImportWorkerError(
            f"an import worker failed ({type(exc).__name__}); nothing of this batch was written"
        ) from None


class ImportWorkerError(VaultError):
    """A worker process failed; the batch was not written and the import can be re-run."""


class Importer:
    """Imports a file into the vault through the profile service's row builders."""

    def __init__(
        self, profiles: ProfileService, batch_size: int = 5000, workers: int | None = None, max_errors_kept: int = 1000
    ) -> None:
        self.profiles = profiles
        self.batch_size = batch_size
        self.workers = min(2, os.cpu_count() or 1) if workers is None else workers
        self.max_errors_kept = max_errors_kept
        self._unique = {s.name for s in profiles.catalogue.searchable if s.unique}
        self._actor = Actor("operator:import", "operator", "vault")
        self._rows = ImportRows(profiles.engine.dialect)
        self._deks = DekRows(profiles.dekstore)
        self._writer = ImportWriter(profiles.engine)

    def run(self, path: Path, agency: str, fmt: Format | None = None, progress: Progress | None = None) -> ImportResult:
        """Import (or resume importing) ``path`` on behalf of ``agency``."""
        self._actor = Actor("operator:import", "operator", agency)
        fmt = fmt or detect_format(path)
        result = self._start(path, agency, file_digest(path))
        if result.already_done:
            return result
        global _WORKER  # noqa: PLW0603 - the one way to hand unpicklable state to forked workers
        svc = self.profiles
        self._rows = ImportRows(svc.engine.dialect)
        self._deks = DekRows(svc.dekstore)
        _WORKER = WorkerState(svc.catalogue, svc.indexer, svc.pii, frozenset(self._unique), self._rows, self._deks)
        pool: Pool | None = None
        # Everything alive now lives as long as the import: frozen, the collector stops re-scanning
        # it (a loaded PII detector alone is ~200,000 objects), here and in the forked workers, whose
        # inherited pages the collector would otherwise touch and copy. A process that froze its
        # start-up heap itself (vault.runtime.settle_heap) keeps its policy: nothing is unfrozen.
        unfreeze = gc.get_freeze_count() == 0
        gc.freeze()
        try:
            if self.workers > 0:
                # The PII detector (Presidio, ~1.5 s to load) is not built here: screening loads it
                # only for a text the pre-filter cannot clear, in the worker that meets one.
                pool = multiprocessing.get_context("fork").Pool(self.workers)
            with ImportWriter(svc.engine) as self._writer:
                self._pump(result, self._batches(path, fmt, result), agency, pool, progress)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            _WORKER = None
            if unfreeze:
                gc.unfreeze()
        with self.profiles.engine.begin() as conn:
            conn.execute(
                update(import_runs)
                .where(import_runs.c.id == result.run_id)
                .values(status="done", finished_at=self.profiles.clock())
            )
        return result

    def _start(self, path: Path, agency: str, digest: str) -> ImportResult:
        with self.profiles.engine.begin() as conn:
            run = conn.execute(
                select(import_runs).where(import_runs.c.source_sha256 == digest, import_runs.c.agency == agency)
            ).one_or_none()
            if run is not None:
                return ImportResult(
                    run.id, run.accepted, run.rejected, run.lines_done, run.batches_done, run.status == "done"
                )
            run_id = uuid.uuid4()
            conn.execute(
                insert(import_runs).values(
                    id=run_id,
                    source_name=path.name[:500],
                    source_sha256=digest,
                    agency=agency,
                    lines_done=0,
                    batches_done=0,
                    accepted=0,
                    rejected=0,
                    status="running",
                    started_at=self.profiles.clock(),
                )
            )
        return ImportResult(run_id)

    def _batches(self, path: Path, fmt: Format, result: ImportResult) -> Iterator[Batch]:
        if fmt == "jsonl":  # the workers read their lines themselves; here only where batches begin
            yield from jsonl_spans(path, self.batch_size, result.resumed_from_line)
            return
        batch: list[RawItem] = []
        for number, raw in read_items(path, fmt):
            if number <= result.resumed_from_line:
                continue
            batch.append((number, raw))
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _pump(
        self,
        result: ImportResult,
        batches: Iterator[Batch],
        agency: str,
        pool: Pool | None,
        progress: Progress | None,
    ) -> None:
        """Keep a few batches in flight in the workers; commit them in order."""
        now = self.profiles.clock()
        ahead = 2 * max(1, self.workers)
        pending: deque[tuple[int, Batch, AsyncResult[bytes] | None]] = deque()
        batch_no = result.batches_done
        # The batch in flight when an earlier attempt died may have stored its data keys without
        # its profiles, even when it was the run's very first batch (lines_done still 0): always
        # clean up before the first batch (a no-op for a new run, whose ids are all new).
        first = True
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < ahead:
                items = next(batches, None)
                if items is None:
                    exhausted = True
                    break
                args = (result.run_id, batch_no, items, agency, now)
                pending.append((batch_no, items, pool.apply_async(_prepare_in_worker, args) if pool else None))
                batch_no += 1
            if not pending:
                break
            number, items, job = pending.popleft()
            prepared = _collect(job) if job is not None else prepare_batch(result.run_id, number, items, agency, now)
            last_line, lines = batch_extent(items)
            self._commit(result, last_line, prepared, drop_orphans=first)
            first = False
            if progress:
                progress(lines)

    def _commit(self, result: ImportResult, last_line: int, batch: PreparedBatch, drop_orphans: bool) -> None:
        svc = self.profiles
        errors = list(batch.errors)
        if drop_orphans:
            svc.dekstore.destroy_many([uuid.UUID(c) for c in batch.ids])
        # The keys commit first: a profile is never stored without its key. A crash in between
        # leaves this batch's keys only, which the next attempt drops before redoing the batch.
        if batch.deks:  # the provider wraps only here (an HSM)
            self._deks.insert(
                self._deks.wrap(batch.deks, SLOT_PROFILE, NEW_DEK_VERSION), SLOT_PROFILE, NEW_DEK_VERSION, svc.clock()
            )
        else:
            self._deks.insert(batch.keys, SLOT_PROFILE, NEW_DEK_VERSION, batch.now)
        try:
            self._insert(result, last_line, batch, errors)
        except IntegrityError:
            # Some unique value is already registered. Find which (one indexed query per unique
            # field), reject those lines, and retry the rest as a batch; if a concurrent writer
            # still wins a race, fall back to one transaction per profile.
            taken = self._registered({(f, d): line for f, d, line in batch.unique}, result.run_id)
            gone = [uuid.UUID(c) for line, c in zip(batch.lines, batch.ids, strict=True) if line in taken]
            svc.dekstore.destroy_many(gone)
            errors.extend(LineError(n, {f: why}) for n, (f, why) in taken.items())
            batch = self._without(batch, gone)
            try:
                self._insert(result, last_line, batch, errors)
            except IntegrityError:
                self._insert_one_by_one(result, last_line, batch, errors)
        room = self.max_errors_kept - len(result.errors)
        if room > 0:
            result.errors.extend(sorted(errors, key=lambda e: e.line)[:room])

    def _without(self, batch: PreparedBatch, citizens: list[uuid.UUID]) -> PreparedBatch:
        """The batch less some of its citizens (rejected after the database refused the batch)."""
        rows = self._rows
        drop = {rows.citizen_id(c) for c in citizens}
        if not drop:
            return batch
        gone = {str(c) for c in citizens}
        kept = [(line, c) for line, c in zip(batch.lines, batch.ids, strict=True) if c not in gone]
        lines = {line for line, _ in kept}
        return PreparedBatch(
            [line for line, _ in kept],
            [c for _, c in kept],
            [r for r in batch.citizens if rows.citizens.value(r, "id") not in drop],
            [r for r in batch.blind_index if rows.index.value(r, "citizen_id") not in drop],
            [u for u in batch.unique if u[2] in lines],
            [r for r in batch.keys if self._deks.owner(r) not in drop],
            [d for d in batch.deks if d[0] not in citizens],
            [r for r in batch.pii if rows.pii.value(r, "citizen_id") not in drop],
            batch.errors,
            batch.now,
        )

    def _write(self, conn: Connection, batch: PreparedBatch) -> None:
        rows = self._rows
        rows.citizens.write(conn, batch.citizens, rows.citizen_values(batch.now))
        rows.index.write(conn, batch.blind_index)
        rows.pii.write(conn, batch.pii, rows.pii_values(batch.now))
        # One event per created profile, in the batch's transaction: no profile without its audit event.
        self.profiles.audit.append_per_citizen(conn, self._actor, _CREATED, batch.ids)

    def _insert(self, result: ImportResult, last_line: int, batch: PreparedBatch, errors: list[LineError]) -> None:
        with self._writer.transaction() as conn:
            self._write(conn, batch)
            self._checkpoint(conn, result, last_line, len(batch.ids), len(errors))

    def _insert_one_by_one(
        self, result: ImportResult, last_line: int, batch: PreparedBatch, errors: list[LineError]
    ) -> None:
        svc = self.profiles
        accepted = 0
        everyone = [uuid.UUID(c) for c in batch.ids]
        for line, citizen in zip(batch.lines, everyone, strict=True):
            one = self._without(batch, [c for c in everyone if c != citizen])
            try:
                with svc.engine.begin() as conn:
                    self._write(conn, one)
                accepted += 1
            except IntegrityError:
                svc.dekstore.destroy(citizen)
                name = sorted(self._unique)[0] if self._unique else "fields"
                errors.append(LineError(line, {name: _TAKEN}))
        with svc.engine.begin() as conn:
            self._checkpoint(conn, result, last_line, accepted, len(errors))

    def _checkpoint(self, conn: Connection, result: ImportResult, last_line: int, accepted: int, rejected: int) -> None:
        result.accepted += accepted
        result.rejected += rejected
        result.batches_done += 1
        conn.execute(
            update(import_runs)
            .where(import_runs.c.id == result.run_id)
            .values(
                lines_done=last_line,
                batches_done=result.batches_done,
                accepted=result.accepted,
                rejected=result.rejected,
            )
        )

    def _registered(self, seen: dict[tuple[str, bytes], int], run: uuid.UUID) -> dict[int, tuple[str, str]]:
        """Lines whose unique values are already registered (one query per unique field), with the
        field and why: a value taken by an earlier batch of this same run is a duplicate line of
        the file (import ids start with the run's bytes), not another citizen's."""
        by_field: dict[str, list[bytes]] = {}
        for name, digest in seen:
            by_field.setdefault(name, []).append(digest)
        taken: dict[int, tuple[str, str]] = {}
        with self.profiles.engine.connect() as conn:
            for name, digests in by_field.items():
                for start in range(0, len(digests), 500):
                    found = conn.execute(
                        select(blind_index.c.digest, blind_index.c.citizen_id).where(
                            blind_index.c.field == name, blind_index.c.digest.in_(digests[start : start + 500])
                        )
                    )
                    for digest, owner in found:
                        same_run = owner.version == 8 and owner.bytes[:6] == run.bytes[:6]
                        why = DUPLICATE if same_run else _TAKEN
                        taken[seen[(name, digest)]] = (name, why)
        return taken
