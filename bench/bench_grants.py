"""Grant benchmarks: reading through access grants, in-process and over HTTP (SQLite, loopback).

Run: .venv/bin/python -m bench.bench_grants [--citizens 10000] [--seconds 10] [--concurrency 32]
     [--runs 3] [--sweep 1,8] [--paced 0.5] [--bulk 10000] [--page 5000] [--profile] [--big-pool]

* Single-citizen read: `GET /v1/grants/{id}/data` of a grant of 5 fields of one citizen (purpose
  tax-assessment, legal obligation; max_uses 1,000,000) against a bare FastAPI endpoint doing one
  SQLite read, both under uvicorn (1 worker), loaded by wrk (bench/wrk.py: closed loop,
  ``--concurrency`` connections, ``--seconds`` per run) in the same run: successful requests/s,
  p50 and p99 (medians of runs; every response counts, failed ones too), failures, and the ratio.
  ``--sweep`` adds one run at each lower concurrency. With 32 connections always busy, latency is at
  least 32 / throughput (Little's law), so a saturated run says little about latency: ``--paced``
  also loads both endpoints below saturation, each connection pausing a random time between
  requests so that together they offer that fraction of the bare endpoint's saturated throughput,
  and reports p50 and p99 there.
* Bulk read: one grant over ``--bulk`` citizens, every page read (``--page`` per call, each call one
  use and one audit event per citizen): records/s in-process through `vault.grants.read` (median of
  runs) and over HTTP (median of runs). ``--profile`` (or a missed target) adds a cProfile of one
  in-process bulk read.
* ``--big-pool`` (diagnostic, not the product as shipped): the same grant load against a second
  vault server whose SQLite data engine has a 100-connection pool, i.e. more connections than the
  server has threads, to separate pool exhaustion from SQLite write serialisation.

The load generator is bounded and only targets 127.0.0.1. Every citizen is fictitious (vault.demo)
and every actor invented.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from api.security import issuing
from api.settings import AppSettings
from bench import wrk
from bench.bench_api import BARE_APP, _port, _wait
from bench.common import machine, median, speed_probe
from vault.audit.log import Actor
from vault.grants.service import GrantRequest
from vault.models import citizens
from vault.runtime import Vault, open_vault, settle_heap

FIELDS = ["given_name", "family_name", "date_of_birth", "national_id", "income"]
PURPOSE = "tax-assessment"
CASEWORKER = Actor("caseworker@tax-office", "caseworker", "tax-office")
BULK_TARGET = 20_000  # citizen records/s
RATIO_TARGET = 0.5
P99_TARGET_MS = 20.0

# Diagnostic only (--big-pool): the vault app with a data-engine pool larger than its threadpool.
BIG_POOL_APP = """
import keys.sqlstore as sqlstore
_create_engine = sqlstore.create_engine
def _bigger(url, **kw):
    if str(url).startswith("sqlite"):
        kw.setdefault("pool_size", 100)
        kw.setdefault("max_overflow", 0)
    return _create_engine(url, **kw)
sqlstore.create_engine = _bigger
from api.asgi import app
"""


def read_all(vault: Vault, grant_id: str, page: int) -> int:
    """Read every page of a grant in-process; the number of citizen records read."""
    after: str | None = None
    count = 0
    while True:
        _, records, after = vault.grants.read(CASEWORKER, grant_id, after, page)
        count += sum(1 for _, v in records if v is not None)
        if after is None:
            return count


def read_all_http(client: httpx.Client, url: str, page: int) -> int:
    """Read every page of a grant over HTTP; the number of citizen records read."""
    after: str | None = None
    count = 0
    while True:
        params: dict[str, str | int] = {"limit": page} | ({"after": after} if after else {})
        response = client.get(url, params=params)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
        body = response.json()
        count += sum(1 for r in body["records"] if r["fields"] is not None)
        after = body["next_after"]
        if after is None:
            return count


def _profile(vault: Vault, grant_id: str, page: int, top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    read_all(vault, grant_id, page)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top + 12)
    return out.getvalue()


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") if log else open(os.devnull, "wb") as sink:
        return subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, stdout=sink, stderr=sink)


def _row(label: str, runs: list[wrk.WrkRun]) -> str:
    requests = sum(r.requests for r in runs)
    failed = sum(r.failed for r in runs)
    return (
        f"| {label} | {median([r.ok_per_s for r in runs]):,.0f} | {median([r.p50_ms for r in runs]):.1f} | "
        f"{median([r.p99_ms for r in runs]):.1f} (worst {max(r.p99_ms for r in runs):.1f}) | {failed:,} of {requests:,} |"
    )


def main() -> None:
    """Run and print figures (markdown)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per load run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=30, help="client timeout per request, seconds")
    parser.add_argument("--sweep", default="1,8", help="extra grant-read concurrencies, one run each")
    parser.add_argument(
        "--paced",
        type=float,
        default=0.5,
        help="also load both endpoints below saturation: think times set for this fraction of the bare "
        "endpoint's saturated throughput (0 to skip)",
    )
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process bulk read")
    parser.add_argument("--big-pool", action="store_true", help="diagnostic: also load a server with a larger pool")
    args = parser.parse_args()
    if args.bulk > args.citizens:
        parser.error("--bulk must be <= --citizens")
    sweep = [int(c) for c in args.sweep.split(",") if c.strip()]
    root = Path(tempfile.mkdtemp(prefix="cv-grants-"))
    data = root / "data"
    cli = str(Path(sys.executable).parent / "citizen-vault")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE"] = "100000000"
    load_start = os.getloadavg()[0]
    probe_start = speed_probe()
    began = time.perf_counter()
    subprocess.run(
        [cli, "--data-dir", str(data), "demo", "--citizens", str(args.citizens)],
        env=env,
        check=True,
        capture_output=True,
    )
    demo_seconds = time.perf_counter() - began
    settings = AppSettings(data_dir=data)
    vault = open_vault(settings)
    vault.background_checkpoints()  # as the server does at start-up
    settle_heap()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with vault.data_engine.connect() as conn:
            ids = [str(c) for c in conn.scalars(select(citizens.c.id).order_by(citizens.c.id).limit(args.bulk))]
        single = vault.grants.request(CASEWORKER, GrantRequest(ids[:1], PURPOSE, FIELDS, 86_400, 1_000_000))
        start = time.perf_counter()
        bulk = vault.grants.request(CASEWORKER, GrantRequest(ids, PURPOSE, FIELDS, 86_400, 1000))
        bulk_request_seconds = time.perf_counter() - start

        # -- bulk, in-process ---------------------------------------------------------------
        inproc: list[float] = []
        probes = {"in-process": [speed_probe()]}
        for _ in range(args.runs):
            start = time.perf_counter()
            n = read_all(vault, bulk.id, args.page)
            inproc.append(n / (time.perf_counter() - start))
            if n != len(ids):
                raise RuntimeError(f"bulk read returned {n} records, expected {len(ids)}")
        probes["in-process"].append(speed_probe())
        profile_text = _profile(vault, bulk.id, args.page) if args.profile or median(inproc) < BULK_TARGET else None
        vault.close()  # from here on only the servers touch the database (no second checkpointer)

        # -- HTTP ----------------------------------------------------------------------------
        (root / "bare_app.py").write_text(BARE_APP.format(db=data / "vault.db"))
        vport, bport, pport = _port(), _port(), _port()
        server_log = root / "vault-server.log"
        procs.append(_spawn([cli, "--data-dir", str(data), "serve", "--port", str(vport)], root, env, server_log))
        uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning"]
        procs.append(_spawn([*uvicorn, "bare_app:app", "--port", str(bport)], root, env))
        base, bare_url = f"http://127.0.0.1:{vport}", f"http://127.0.0.1:{bport}/bare"
        _wait(f"{base}/healthz")
        _wait(bare_url)
        token = issuing.issue(
            vault.signing, settings.issuer, settings.audience, CASEWORKER.subject, "caseworker", "tax-office", 3600
        )
        headers = {"Authorization": f"Bearer {token}"}
        single_url = f"{base}/v1/grants/{single.id}/data"
        check = httpx.get(single_url, headers=headers, timeout=10)
        if check.status_code != 200 or sorted(check.json()["records"][0]["fields"]) != sorted(FIELDS):
            raise RuntimeError(f"single-citizen read: {check.status_code} {check.text[:300]}")

        http_bulk: list[float] = []
        probes["HTTP"] = [speed_probe()]
        with httpx.Client(headers=headers, timeout=120) as client:
            for _ in range(args.runs):
                start = time.perf_counter()
                n = read_all_http(client, f"{base}/v1/grants/{bulk.id}/data", args.page)
                http_bulk.append(n / (time.perf_counter() - start))
                if n != len(ids):
                    raise RuntimeError(f"HTTP bulk read returned {n} records, expected {len(ids)}")
        probes["HTTP"].append(speed_probe())

        def load(url: str, hdrs: dict[str, str], connections: int, think_ms: float | None = None) -> wrk.WrkRun:
            return wrk.run(url, hdrs, connections, args.seconds, args.timeout, think_ms)

        bare = [load(bare_url, {}, args.concurrency) for _ in range(args.runs)]
        swept = {c: load(single_url, headers, c) for c in sweep}
        grant = [load(single_url, headers, args.concurrency) for _ in range(args.runs)]
        # Below saturation: each connection thinks between requests, so that all of them together
        # offer about args.paced of what the bare endpoint served flat out.
        offered = args.paced * median([r.ok_per_s for r in bare])
        think = 1000.0 * args.concurrency / offered if offered > 0 else None
        paced_bare: list[wrk.WrkRun] = []
        paced_grant: list[wrk.WrkRun] = []
        for _ in range(args.runs if think else 0):
            paced_bare.append(load(bare_url, {}, args.concurrency, think))
            paced_grant.append(load(single_url, headers, args.concurrency, think))
        big: list[wrk.WrkRun] = []
        if args.big_pool:
            (root / "big_pool_app.py").write_text(BIG_POOL_APP)
            procs.append(
                _spawn(
                    [*uvicorn, "--factory", "big_pool_app:app", "--port", str(pport)],
                    root,
                    env | {"CITIZEN_VAULT_DATA_DIR": str(data)},
                )
            )
            _wait(f"http://127.0.0.1:{pport}/healthz")
            big_url = f"http://127.0.0.1:{pport}/v1/grants/{single.id}/data"
            big = [load(big_url, headers, args.concurrency) for _ in range(args.runs)]

        # -- report --------------------------------------------------------------------------
        print(f"command: .venv/bin/python -m bench.bench_grants {' '.join(sys.argv[1:])}".strip())
        print(
            f"machine: {machine()}; load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
            f"speed probe {probe_start:.1f} ms at start, {speed_probe():.1f} ms at end (bench.common.speed_probe); "
            f"demo with {args.citizens:,} citizens: {demo_seconds:.0f} s; "
            f"bulk grant request ({len(ids):,} citizens, in-process): {bulk_request_seconds:.2f} s; "
            f"whole benchmark: {time.perf_counter() - began:.0f} s"
        )
        print(
            f"\nSingle-citizen grant read, 5 fields: wrk, 1 thread, {args.concurrency} connections, "
            f"{args.seconds:.0f} s per run, {args.runs} runs\n"
        )
        print(
            f"| endpoint | successful requests/s (median of {args.runs}) | p50 ms (median) | p99 ms (median) | "
            "failed |\n|---|---|---|---|---|"
        )
        print(_row(f"`GET /v1/grants/{{id}}/data`, {args.concurrency} connections", grant))
        print(_row(f"bare FastAPI endpoint, one SQLite read, {args.concurrency} connections", bare))
        for c, run in swept.items():
            print(_row(f"`GET /v1/grants/{{id}}/data`, {c} connection(s), 1 run", [run]))
        if big:
            print(_row(f"diagnostic: same, server with a 100-connection pool, {args.concurrency} connections", big))
        if think:
            print(
                f"\nBelow saturation: {args.concurrency} connections, each pausing a random time (exponential, "
                f"mean {think:.0f} ms) between requests, i.e. about {offered:,.0f} requests/s offered "
                f"({args.paced:.0%} of the bare endpoint's saturated throughput); {args.runs} runs each, interleaved\n"
            )
            print(
                f"| endpoint | served requests/s (median of {args.runs}) | p50 ms (median) | p99 ms (median) | "
                "failed |\n|---|---|---|---|---|"
            )
            print(_row("`GET /v1/grants/{id}/data`, paced", paced_grant))
            print(_row("bare FastAPI endpoint, paced", paced_bare))
        logged = server_log.read_text(errors="replace")
        print(
            f"\nvault server log: {logged.count('database is locked')} 'database is locked', "
            f"{logged.count('QueuePool limit')} 'QueuePool limit ... reached, connection timed out'"
        )
        ratio = median([r.ok_per_s for r in grant]) / median([r.ok_per_s for r in bare])
        p99 = median([r.p99_ms for r in grant])
        print(
            f"\nratio grant / bare: {ratio:.2f} (target >= {RATIO_TARGET}: {'met' if ratio >= RATIO_TARGET else 'MISSED'}); "
            f"grant p99 {p99:.1f} ms at {args.concurrency} connections, saturated (target <= {P99_TARGET_MS:.0f} ms: "
            f"{'met' if p99 <= P99_TARGET_MS else 'MISSED'}; the bare endpoint's: "
            f"{median([r.p99_ms for r in bare]):.1f} ms)"
        )
        if paced_grant:
            p99_paced = median([r.p99_ms for r in paced_grant])
            print(
                f"grant p99 {p99_paced:.1f} ms at {args.concurrency} connections below saturation "
                f"(target <= {P99_TARGET_MS:.0f} ms: {'met' if p99_paced <= P99_TARGET_MS else 'MISSED'}; "
                f"the bare endpoint's: {median([r.p99_ms for r in paced_bare]):.1f} ms)"
            )
        pages = -(-len(ids) // args.page)
        print(f"\nBulk grant read, {len(ids):,} citizens x 5 fields, {pages} pages of {args.page:,}\n")
        print(
            f"| path | citizen records/s (median of {args.runs}) | runs | speed probe before, after (ms) | target |\n"
            "|---|---|---|---|---|"
        )
        for label, values, probe in (
            ("in-process `vault.grants.read`", inproc, probes["in-process"]),
            ("HTTP `GET /v1/grants/{id}/data`", http_bulk, probes["HTTP"]),
        ):
            rate = median(values)
            status = "met" if rate >= BULK_TARGET else "MISSED"
            runs = ", ".join(f"{v:,.0f}" for v in values)
            print(f"| {label} | {rate:,.0f} | {runs} | {probe[0]:.1f}, {probe[1]:.1f} | >= {BULK_TARGET:,}: {status} |")
        if profile_text is not None:
            print("\ncProfile, one in-process bulk read:\n")
            print(profile_text)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        vault.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
