"""A consent withdrawal racing reads through the grant that rests on it, on both backends.

Reader processes loop reading through a consent-based grant while the main process withdraws the
consent. Each read records the wall-clock time (time.time_ns(), one clock for all processes) right
before it starts; the main process records the time right after withdraw() returns, when its
transaction has committed. No read that started after that instant may return data (the grant
row, which every read updates first, was revoked in the withdrawal's transaction). Several rounds,
with different delays before the withdrawal, exercise different interleavings; each round must see
reads that returned data before the withdrawal and refusals after it, or it proves nothing.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_helpers import BACKENDS, backend_settings
from tests.support.grants_helpers import (
    BENEFITS,
    ReadRecord,
    citizen_actor,
    citizen_fields,
    count_events,
    read_worker,
)
from vault.audit.verify import verify_database
from vault.demo_registry import seed_purposes, seed_registry
from vault.grants.service import GrantRequest
from vault.runtime import Vault, init_vault

READERS = 3
DELAYS = [0.0, 0.003, 0.01, 0.03, 0.08]  # seconds between "readers are succeeding" and the withdrawal
PURPOSE = "benefit-eligibility"
REFUSED_AFTER = {"grant-revoked", "consent-withdrawn"}


def _collect(results: Queue[Any], procs: Sequence[BaseProcess]) -> list[tuple[int, list[ReadRecord], str | None]]:
    """One report per child; fails at once when a child dies without reporting, or after a deadline."""
    reports: list[tuple[int, list[ReadRecord], str | None]] = []
    deadline = time.monotonic() + 120
    while len(reports) < len(procs):
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode != 0]
            assert not dead, f"a child died without reporting (exit codes {dead})"
            assert time.monotonic() < deadline, "the readers did not finish in time"
    return reports


def _wait_for(condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


def _round(vault: Vault, citizen: str, delay: float) -> dict[str, int]:
    """One race; returns counts of what the readers saw."""
    consent = vault.consents.give(citizen, BENEFITS.agency, PURPOSE, None, None, actor=citizen_actor(citizen))
    grant = vault.grants.request(BENEFITS, GrantRequest([citizen], PURPOSE, ["given_name", "income"], 3600, 1_000_000))
    assert grant.status == "active"
    # fork: no connection crosses it. Both engines are emptied first; each child opens the vault afresh,
    # and this process opens new connections when it next uses the (disposed, still usable) engines.
    vault.close()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(READERS + 1)
    stop = ctx.Event()
    counts = ctx.Array("q", 2 * READERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=read_worker, args=(vault.settings, grant.id, w, start, stop, counts, results))
        for w in range(READERS)
    ]
    for proc in procs:
        proc.start()
    try:
        start.wait(timeout=120)
        # Every reader has had data at least once: the withdrawal lands in the middle of their loops.
        _wait_for(lambda: all(counts[2 * w + 1] >= 2 for w in range(READERS)), "every reader read data")
        time.sleep(delay)
        vault.consents.withdraw(citizen, consent.id, actor=citizen_actor(citizen))
        committed = time.time_ns()  # withdraw() has returned: its transaction has committed
        seen = [counts[2 * w] for w in range(READERS)]
        # Every reader starts several reads after the commit before it is told to stop.
        _wait_for(lambda: all(counts[2 * w] >= seen[w] + 3 for w in range(READERS)), "every reader read again")
        stop.set()
        reports = _collect(results, procs)
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = [error for _, _, error in reports if error]
    assert not errors, errors[0]
    assert [proc.exitcode for proc in procs] == [0] * READERS

    reads = [r for _, log, _ in reports for r in log]
    late_data = [r for r in reads if r[0] > committed and r[2] is None]
    assert not late_data, (
        f"{len(late_data)} read(s) started after the withdrawal had committed and still returned data "
        f"(first started {(late_data[0][0] - committed) / 1e6:.3f} ms after the commit)"
    )
    for _, log, _ in reports:
        after = [why for began, _, why in log if began > committed]
        assert after, "a reader started no read after the withdrawal"
        assert set(after) <= REFUSED_AFTER, f"unexpected refusals after the withdrawal: {set(after)}"
    data = [r for r in reads if r[2] is None]
    assert data, "no read returned data before the withdrawal: the round proves nothing"
    assert {why for *_, why in reads} <= REFUSED_AFTER | {None}, {why for *_, why in reads}

    final = vault.grants.get(BENEFITS.agency, grant.id)
    assert (final.status, final.status_reason) == ("revoked", "consent-withdrawn")
    assert final.uses == len(data), "every read that returned data spent exactly one use, and no other did"
    assert count_events(vault.data_engine, "grants.read", "allowed", grant.id) == len(data), "no audit, no data"
    return {
        "data": len(data),
        "refused": len(reads) - len(data),
        # reads that were under way at the instant withdraw() returned
        "straddling": sum(1 for began, ended, _ in reads if began <= committed <= ended),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_read_after_withdrawal_commits_returns_data(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    vault = init_vault(backend_settings(request, tmp_path / "data", backend))
    try:
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        citizen = str(vault.profiles.create(citizen_fields(7), "civil-registry"))
        totals = {"data": 0, "refused": 0, "straddling": 0}
        for delay in DELAYS:
            for key, value in _round(vault, citizen, delay).items():
                totals[key] += value
        assert totals["data"] and totals["refused"], totals
        report = verify_database(vault.audit)
        assert report.ok, report.finding
    finally:
        vault.close()
