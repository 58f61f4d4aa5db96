"""The privacy budget is kept by the vault: it survives a restart and cannot be overspent by
concurrent processes, on SQLite and PostgreSQL (issue 15)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.audit_helpers import BACKENDS
from tests.support.insights_helpers import day, facts, fill
from tests.support.insights_world import ANALYST, insight_settings, open_insights
from vault.errors import Refused
from vault.insights.budget import Budget
from vault.insights.query import Query
from vault.insights.tables import insight_budget, insight_releases
from vault.settings import Settings

PROCESSES, ATTEMPTS = 4, 5
QUERY = Query(("agency",), None, day("2026-03-01"), day("2026-05-31"), ())


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_holds_across_a_restart(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    settings = insight_settings(request, tmp_path, backend, insights_budget_epsilon=3.0)
    vault, service = open_insights(settings)
    fill(vault.data_engine, facts(500))
    service.query(ANALYST, QUERY, 1.0)
    service.query(ANALYST, QUERY, 1.5)
    vault.close()
    again, service = open_insights(settings, create=False)  # a new process would see the same
    try:
        assert service.budget(ANALYST.subject).spent == pytest.approx(2.5)
        with pytest.raises(Refused) as refused:
            service.query(ANALYST, QUERY, 1.0)
        assert refused.value.reason == "privacy-budget-exhausted"
        assert refused.value.details["epsilon_remaining"] == "0.5"
        service.query(ANALYST, QUERY, 0.5)  # exactly what is left
        assert service.budget(ANALYST.subject).remaining == 0
    finally:
        again.close()


def _spender(settings: Settings, start: Any, results: Any) -> None:
    """A separate process: try ATTEMPTS queries of epsilon 1; report how many were released."""
    vault, service = open_insights(settings, create=False)
    # Blind the early check (a plain read): only the spending transaction's own condition stands
    # between these processes and an overspent budget.
    service.budget = lambda subject: Budget(settings.insights_budget_epsilon, 0.0, 0, 0)  # type: ignore[method-assign]
    released = 0
    start.wait(timeout=120)
    for _ in range(ATTEMPTS):
        try:
            service.query(ANALYST, QUERY, 1.0)
            released += 1
        except Refused as exc:
            assert exc.reason == "privacy-budget-exhausted"
    vault.close()
    results.put(released)


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_processes_never_overspend(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """Twenty queries of epsilon 1 race for a budget of 7: exactly seven are released."""
    settings = insight_settings(request, tmp_path, backend, insights_budget_epsilon=7.0)
    vault, service = open_insights(settings)
    fill(vault.data_engine, facts(500))
    service.refresh(full=True)
    vault.close()
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_spender, args=(settings, start, results)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    counts = [results.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    assert sum(counts) == 7, counts
    vault, _ = open_insights(settings, create=False)
    try:
        with vault.data_engine.connect() as conn:
            spent = conn.scalar(select(insight_budget.c.spent))
            releases = conn.execute(select(insight_releases.c.epsilon)).scalars().all()
        assert spent == pytest.approx(7.0) and len(releases) == 7 and sum(releases) == pytest.approx(7.0)
    finally:
        vault.close()
