"""Several OS processes append to one audit log at once, on both backends: afterwards the sequence
runs 1..N with no gap or duplicate, every process's events are there, checkpoints fall exactly
every N events, and the log verifies.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_helpers import (
    BACKENDS,
    CHECKPOINT_EVERY,
    CLERK,
    append_worker,
    backend_settings,
    event_count,
    load_events,
    seqs,
)
from vault.audit import verify as verify_module
from vault.audit.log import Event
from vault.audit.verify import load_checkpoints, verify_database
from vault.runtime import init_vault

WORKERS = 4
PER_WORKER = 50  # half AuditLog.record, half audited profile reads


def _collect(results: Queue[Any], procs: Sequence[BaseProcess]) -> list[tuple[int, list[int], str | None]]:
    """One report per child; fails at once when a child dies without reporting, or after a deadline."""
    reports: list[tuple[int, list[int], str | None]] = []
    deadline = time.monotonic() + 120
    while len(reports) < len(procs):
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode != 0]
            assert not dead, f"a child died without reporting (exit codes {dead})"
            assert time.monotonic() < deadline, "the children did not finish in time"
    return reports


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_appending_at_once_leave_no_gap_and_no_fork(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = backend_settings(request, tmp_path / "data", backend)
    vault = init_vault(settings)
    try:
        citizen = vault.profiles.create({"given_name": "Concurra", "family_name": "Testworth"}, "civil-registry")
        before = event_count(vault.data_engine)
        # fork: the children start at once (no re-import). No connection crosses the fork: both
        # engines are emptied first, and every child opens the vault afresh with the same settings.
        vault.close()
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(WORKERS)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=append_worker, args=(settings, citizen, w, PER_WORKER, barrier, results))
            for w in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        try:
            reports = _collect(results, procs)
        finally:
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        errors = [error for _, _, error in reports if error]
        assert not errors, errors[0]
        assert [proc.exitcode for proc in procs] == [0] * WORKERS

        expected = before + WORKERS * PER_WORKER
        assert seqs(vault.data_engine) == list(range(1, expected + 1))
        recorded = [s for _, worker_seqs, _ in reports for s in worker_seqs]
        assert len(recorded) == len(set(recorded)) == WORKERS * PER_WORKER // 2
        for _, worker_seqs, _ in reports:
            assert worker_seqs == sorted(worker_seqs)  # each process saw its own appends in order
        rows: list[dict[str, Any]] = load_events(vault.data_engine)
        by_actor = Counter(r["actor"] for r in rows[before:])
        assert by_actor == {f"worker-{w}": PER_WORKER for w in range(WORKERS)}
        # The appends really did interleave (strictly one process after another would switch WORKERS - 1 times).
        actors = [r["actor"] for r in rows[before:]]
        assert sum(a != b for a, b in itertools.pairwise(actors)) > WORKERS, "no concurrency happened"
        assert Counter(r["action"] for r in rows[before:]) == {
            "test.ping": WORKERS * PER_WORKER // 2,
            "citizens.read": WORKERS * PER_WORKER // 2,
        }

        report = verify_database(vault.audit)
        assert report.ok, report.finding
        assert report.head_count == expected
        counts = [c.count for c in load_checkpoints(vault.data_engine)]
        assert counts == list(range(CHECKPOINT_EVERY, expected + 1, CHECKPOINT_EVERY))
    finally:
        vault.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_events_appended_while_a_verification_runs_are_not_findings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live server keeps appending (and checkpointing) while `audit verify` reads: the verification
    covers the log as one snapshot saw it, and what came after is the next verification's."""
    vault = init_vault(backend_settings(request, tmp_path / "data", backend))
    try:
        for i in range(3 * CHECKPOINT_EVERY + 2):
            vault.audit.record(CLERK, Event("audit.read", reason=f"before {i}"))
        real_load = verify_module.load_checkpoints

        def load_after_appends(engine: Any) -> Any:  # the first read after the snapshot
            for i in range(2 * CHECKPOINT_EVERY + 3):
                vault.audit.record(CLERK, Event("audit.read", reason=f"during {i}"))
            return real_load(engine)

        monkeypatch.setattr(verify_module, "load_checkpoints", load_after_appends)
        during = verify_database(vault.audit)
        assert during.ok, during.finding
        assert during.events == 3 * CHECKPOINT_EVERY + 2
        monkeypatch.setattr(verify_module, "load_checkpoints", real_load)
        after = verify_database(vault.audit)
        assert after.ok and after.events == during.events + 2 * CHECKPOINT_EVERY + 3
    finally:
        vault.close()
