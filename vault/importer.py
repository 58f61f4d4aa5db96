"""Bulk import of profiles from JSON Lines or CSV: batched, resumable, one transaction per batch.

Resumability: an import run is keyed by (SHA-256 of the file, supplying agency). Each batch commits
its profiles together with the run's checkpoint (last line and batch done), so after a crash (even
SIGKILL) re-running the same command skips what is done and continues. Citizen ids are derived
from (run id, batch, line): the data keys of the batch in flight when the process died are
recognised and dropped before that batch is redone, so no key is orphaned and no profile is
half-written. Rejected lines are reported by line number and field, never with their values.

Speed: validation and encryption (CPU-bound) run in forked worker processes, a few batches
ahead, while this process wraps data keys and writes to the databases. Workers inherit the
catalogue and blind-index keys by fork and never touch a database or the KEK provider; the fresh
data keys they generate travel back over a local pipe (memory only) to be wrapped here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys import aead
from keys.dekstore import DekRef
from keys.sqlstore import RowWriter
from vault.audit.log import Actor, Event
from vault.catalogue import Catalogue
from vault.errors import ValidationFailed, VaultError
from vault.fieldcipher import SLOT_PROFILE
from vault.ids import import_citizen_id
from vault.models import blind_index, citizens, import_runs
from vault.pii.intake import Intake, own_values
from vault.pii.tables import pii_findings
from vault.profiles import records
from vault.profiles.records import Indexer
from vault.profiles.service import ProfileService

log = logging.getLogger(__name__)
Format = Literal["jsonl", "csv"]
MAX_LINE_BYTES = 1_000_000
Progress = Callable[[int], None]
RawItem = tuple[int, "bytes | dict[str, Any] | LineError"]
_TAKEN = "already registered to another citizen"


@dataclass(frozen=True)
class LineError:
    """Why one input line was rejected (field -> reason; never a value)."""

    line: int
    problems: dict[str, str]


class Ready(NamedTuple):
    """One validated, encrypted profile waiting to be written, as driver parameters (a tuple:
    thousands cross the process boundary per batch)."""

    line: int
    citizen: uuid.UUID
    dek: bytes
    citizen_params: Any
    index_params: list[Any]
    unique_keys: list[tuple[str, bytes]]
    pii: list[tuple[str, str]]  # (free-text field, stored findings JSON): types and counts only


@dataclass(frozen=True)
class WorkerState:
    """What forked workers inherit: never pickled, never touching a database or the KEK provider."""

    catalogue: Catalogue
    indexer: Indexer
    citizens: RowWriter
    index: RowWriter
    unique: frozenset[str]
    intake: Intake


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


def detect_format(path: Path) -> Format:
    """JSON Lines for .jsonl/.ndjson/.json, CSV for .csv."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValidationFailed({"file": f"unknown format {suffix[:16]!r}: use .jsonl or .csv, or pass --format"})


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_lines(path: Path) -> int:
    """Number of lines, for progress bars."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def read_items(path: Path, fmt: Format) -> Iterator[RawItem]:
    """Yield (line number, raw JSON line | CSV row | parse error). Blank lines are skipped."""
    with path.open("rb") as fh:
        if fmt == "jsonl":
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield number, raw
            return
        reader = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""), strict=True)
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    yield line, LineError(line, {"line": "wrong number of columns"})
                    continue
                yield line, {k: v for k, v in row.items() if v != ""}
        except (csv.Error, UnicodeDecodeError) as exc:
            line = reader.line_num
            yield line, LineError(line, {"line": f"unreadable CSV ({exc.__class__.__name__})"})


def _parse(number: int, raw: bytes | dict[str, Any] | LineError) -> dict[str, Any] | LineError:
    if isinstance(raw, (dict, LineError)):
        return raw
    if len(raw) > MAX_LINE_BYTES:
        return LineError(number, {"line": f"longer than {MAX_LINE_BYTES} bytes"})
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return LineError(number, {"line": "not valid JSON"})
    if not isinstance(obj, dict):
        return LineError(number, {"line": "not a JSON object of field names to values"})
    return obj


# Set just before the pool forks (and for inline runs); never pickled.
_WORKER: WorkerState | None = None


def prepare_batch(
    run: uuid.UUID, batch_no: int, items: list[RawItem], agency: str, now: datetime
) -> list[Ready | LineError]:
    """Validate and encrypt one batch (runs in a worker process, or inline)."""
    assert _WORKER is not None, "worker state not initialised"
    state = _WORKER
    catalogue = state.catalogue
    out: list[Ready | LineError] = []
    for number, raw in items:
        item = _parse(number, raw)
        if isinstance(item, LineError):
            out.append(item)
            continue
        try:
            values = catalogue.validate(item, creating=True)
            # Free text is screened on every write path, imports included (a refusal is a line error).
            values, findings = state.intake.screen(values, own_values(values))
        except ValidationFailed as exc:
            out.append(LineError(number, exc.problems))
            continue
        citizen = import_citizen_id(run, batch_no, number)
        dek = aead.new_key()
        p = records.prepare(catalogue, state.indexer, citizen, dek, values, agency, now)
        out.append(
            Ready(
                number,
                citizen,
                dek,
                state.citizens.encode(p.citizen),
                [state.index.encode(i) for i in p.index],
                [(i["field"], i["digest"]) for i in p.index if i["field"] in state.unique],
                [(f.field, f.stored()) for f in findings.values()],
            )
        )
    return out


def _first(params: Any) -> Any:
    return params[0] if isinstance(params, tuple) else params["id"]


def _index_key(params: Any) -> Any:
    return (params[0], params[1]) if isinstance(params, tuple) else (params["field"], params["digest"])


def _collect(job: AsyncResult[list[Ready | LineError]]) -> list[Ready | LineError]:
    """A worker's result. A failure is re-raised without its message: multiprocessing puts the
    whole unsendable result (data keys included) into the text of its errors."""
    try:
        return job.get()
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
        self._now = profiles.clock()

    def run(self, path: Path, agency: str, fmt: Format | None = None, progress: Progress | None = None) -> ImportResult:
        """Import (or resume importing) ``path`` on behalf of ``agency``."""
        self._actor = Actor("operator:import", "operator", agency)
        fmt = fmt or detect_format(path)
        result = self._start(path, agency, file_digest(path))
        if result.already_done:
            return result
        global _WORKER  # noqa: PLW0603 - the one way to hand unpicklable state to forked workers
        dialect = self.profiles.engine.dialect
        _WORKER = self._state = WorkerState(
            self.profiles.catalogue,
            self.profiles.indexer,
            RowWriter(citizens, dialect),
            RowWriter(blind_index, dialect),
            frozenset(self._unique),
            self.profiles.pii,
        )
        pool: Pool | None = None
        try:
            if self.workers > 0:
                if self.profiles.pii.free_text:
                    self.profiles.pii.detector()  # built once here, inherited by the forked workers
                pool = multiprocessing.get_context("fork").Pool(self.workers)
            self._pump(result, self._batches(path, fmt, result), agency, pool, progress)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            _WORKER = None
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

    def _batches(self, path: Path, fmt: Format, result: ImportResult) -> Iterator[list[RawItem]]:
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
        batches: Iterator[list[RawItem]],
        agency: str,
        pool: Pool | None,
        progress: Progress | None,
    ) -> None:
        """Keep a few batches in flight in the workers; commit them in order."""
        now = self._now = self.profiles.clock()
        ahead = 2 * max(1, self.workers)
        pending: deque[tuple[list[RawItem], AsyncResult[list[Ready | LineError]] | None]] = deque()
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
                pending.append((items, pool.apply_async(prepare_batch, args) if pool else None))
                batch_no += 1
            if not pending:
                break
            items, job = pending.popleft()
            prepared = (
                _collect(job)
                if job is not None
                else prepare_batch(result.run_id, result.batches_done, items, agency, now)
            )
            self._commit(result, items[-1][0], prepared, drop_orphans=first)
            first = False
            if progress:
                progress(len(items))

    def _commit(self, result: ImportResult, last_line: int, batch: list[Ready | LineError], drop_orphans: bool) -> None:
        svc = self.profiles
        errors = [b for b in batch if isinstance(b, LineError)]
        ready: list[Ready] = []
        seen: dict[tuple[str, bytes], int] = {}
        for item in batch:
            if isinstance(item, LineError):
                continue
            keys = item.unique_keys
            dup = next((k for k in keys if k in seen), None)
            if dup is not None:
                errors.append(LineError(item.line, {dup[0]: "duplicate of an earlier line in this file"}))
                continue
            seen.update(dict.fromkeys(keys, item.line))
            ready.append(item)
        if drop_orphans:
            svc.dekstore.destroy_many([r.citizen for r in ready])
        svc.dekstore.store({DekRef(r.citizen, SLOT_PROFILE, 1): r.dek for r in ready})
        try:
            self._insert(result, last_line, ready, errors)
        except IntegrityError:
            # Some unique value is already registered. Find which (one indexed query per unique
            # field), reject those lines, and retry the rest as a batch; if a concurrent writer
            # still wins a race, fall back to one transaction per profile.
            taken = self._registered(seen, result.run_id)
            for r in ready:
                if r.line in taken:
                    svc.dekstore.destroy(r.citizen)
            errors.extend(LineError(n, {f: why}) for n, (f, why) in taken.items())
            ready = [r for r in ready if r.line not in taken]
            try:
                self._insert(result, last_line, ready, errors)
            except IntegrityError:
                self._insert_one_by_one(result, last_line, ready, errors)
        room = self.max_errors_kept - len(result.errors)
        if room > 0:
            result.errors.extend(sorted(errors, key=lambda e: e.line)[:room])

    def _write(self, conn: Connection, ready: list[Ready]) -> None:
        # Sorted by key, inserts walk each B-tree in order instead of jumping to random pages
        # (blind-index digests are random by construction): measurably faster on SQLite.
        self._state.citizens.write(conn, sorted((r.citizen_params for r in ready), key=_first))
        self._state.index.write(conn, sorted((p for r in ready for p in r.index_params), key=_index_key))
        pii_rows = [
            {"citizen_id": r.citizen, "field": f, "findings": j, "scanned_at": self._now}
            for r in ready
            for f, j in r.pii
        ]
        if pii_rows:
            conn.execute(pii_findings.insert(), pii_rows)
        # One event per created profile, in the batch's transaction: no profile without its audit event.
        self.profiles.audit.append(conn, self._actor, [Event("citizens.create", citizen_id=r.citizen) for r in ready])

    def _insert(self, result: ImportResult, last_line: int, ready: list[Ready], errors: list[LineError]) -> None:
        with self.profiles.engine.begin() as conn:
            self._write(conn, ready)
            self._checkpoint(conn, result, last_line, len(ready), len(errors))

    def _insert_one_by_one(
        self, result: ImportResult, last_line: int, ready: list[Ready], errors: list[LineError]
    ) -> None:
        svc = self.profiles
        accepted = 0
        for r in ready:
            try:
                with svc.engine.begin() as conn:
                    self._write(conn, [r])
                accepted += 1
            except IntegrityError:
                svc.dekstore.destroy(r.citizen)
                name = sorted(self._unique)[0] if self._unique else "fields"
                errors.append(LineError(r.line, {name: _TAKEN}))
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
                        why = "duplicate of an earlier line in this file" if same_run else _TAKEN
                        taken[seen[(name, digest)]] = (name, why)
        return taken
