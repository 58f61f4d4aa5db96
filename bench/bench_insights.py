"""Insight queries over 1,000,000 interactions, on SQLite and on PostgreSQL (issue 15).

Run: .venv/bin/python -m bench.bench_insights [--rows 1000000] [--runs 7] [--backends sqlite,postgresql]

For each backend: generate the anonymous facts (a year of them: 4 agencies, 13 services, 5 channels,
4 kinds, 10 areas; tests/support/insights_helpers.py), build the rollups once (timed: the cost of a
full rebuild), then time a mix of analyst queries end to end through ``InsightService.query``: read
the rollups, add OpenDP noise, spend the budget, store the release, append the audit event. Each
query runs ``--runs`` times; the figures are the median (p50) and the slowest of those runs, and
the p50 over the whole mix. Also timed: the routine refresh of the recent days (the setting's 120),
which a query pays at most once a minute. PostgreSQL is a throw-away server started like the
tests' (tests/support/pg.py). Every value is generated; nothing identifies anybody.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from bench.common import machine, speed_probe
from tests.support.insights_helpers import DAY, facts, fill
from tests.support.pg import PgServer, _bindir, running_server
from vault.audit.log import Actor
from vault.insights.query import Query
from vault.insights.service import InsightService
from vault.runtime import init_vault
from vault.settings import Settings

YEAR_START = 1767225600  # 2026-01-01T00:00:00Z
NOW = YEAR_START + 365 * DAY
ANALYST = Actor("analyst@bench", "analyst", "vault")
D = date.fromisoformat
MIX = [
    ("by agency, whole year", Query(("agency",), None, D("2026-01-01"), D("2026-12-31"))),
    ("by agency and month, year", Query(("agency",), "month", D("2026-01-01"), D("2026-12-31"))),
    ("by service, a quarter", Query(("service",), None, D("2026-04-01"), D("2026-06-30"))),
    ("by area and channel, edges", Query(("area", "channel"), None, D("2026-03-15"), D("2026-06-20"))),
    ("by service, area, kind; month", Query(("service", "area", "kind"), "month", D("2026-01-01"), D("2026-06-30"))),
    ("by agency and week, 6 months", Query(("agency",), "week", D("2026-07-01"), D("2026-12-31"))),
    ("by channel and day, a month", Query(("channel",), "day", D("2026-11-01"), D("2026-11-30"))),
    ("count only, by area, year", Query(("area",), None, D("2026-01-01"), D("2026-12-31"), ())),
]


@contextlib.contextmanager
def postgres() -> Iterator[PgServer]:
    """A throw-away PostgreSQL server, started as the tests start theirs."""
    bindir = _bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (Debian package postgresql)")
    with running_server(bindir, prefix="cv-bench-pg-") as server:
        yield server


def run(backend: str, rows: int, runs: int, root: Path, pg: PgServer | None) -> None:
    """Fill, build, and time the mix on one backend; print the figures."""
    options: dict[str, object] = {
        "data_dir": root / backend,
        "keyring_scrypt_n": 2**10,
        "insights_budget_epsilon": 1000.0,
        "insights_refresh_seconds": 86400,  # the timed queries read the rollups as built
    }
    if pg is not None:
        options |= {"database_url": pg.new_database(), "keystore_url": pg.new_database()}
    settings = Settings(**options)  # type: ignore[arg-type]
    vault = init_vault(settings)
    service = InsightService(vault.data_engine, vault.audit, settings, clock=lambda: NOW)
    started = time.perf_counter()
    fill(vault.data_engine, facts(rows, seed=2026, start=YEAR_START, days=365), batch=50_000)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    service.refresh(full=True)
    built = time.perf_counter() - started
    print(f"\n## {backend}: {rows:,} interactions (generated and inserted in {filled:.0f} s)")
    print(f"full rollup build: {built:.1f} s")
    refresh = InsightService(
        vault.data_engine, vault.audit, settings.model_copy(update={"insights_refresh_seconds": 0}), clock=lambda: NOW
    )
    recent = [_timed(refresh.refresh) for _ in range(3)]
    print(
        f"routine refresh of the last {settings.insights_refresh_days} days: {statistics.median(recent) * 1000:.0f} ms (median of 3)"
    )
    print("| query | p50 ms | max ms | rows released |")
    print("|---|---:|---:|---:|")
    every: list[float] = []
    for label, query in MIX:
        times, released = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            answer = service.query(ANALYST, query, 1.0)
            times.append(time.perf_counter() - start)
            released = len(answer.result["rows"])
        every += times
        print(f"| {label} | {statistics.median(times) * 1000:.0f} | {max(times) * 1000:.0f} | {released} |")
    print(
        f"p50 over the mix: {statistics.median(every) * 1000:.0f} ms; p90: {statistics.quantiles(every, n=10)[-1] * 1000:.0f} ms"
    )
    vault.close()


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    """Parse arguments, run each backend."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"# bench_insights: {machine()}; speed probe {speed_probe():.1f} ms (lower is faster)")
    root = Path(tempfile.mkdtemp(prefix="cv-bench-insights-"))
    try:
        for backend in args.backends.split(","):
            if backend == "postgresql":
                with postgres() as pg:
                    run(backend, args.rows, args.runs, root, pg)
            else:
                run(backend, args.rows, args.runs, root, None)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
