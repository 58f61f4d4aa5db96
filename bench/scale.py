"""One command for issue 16: the audited grant read of 5 fields against the honest baseline
(bench/baselines.py), on SQLite and PostgreSQL, with 1, 2 and 4 API processes, in one run; one table.

Run: .venv/bin/python -m bench.scale [--quick] [--seconds 5] [--runs 3] [--procs 1,2,4]
     [--backends sqlite,pg] [--connections 32] [--citizens 1000]

Each cell: wrk (bench/wrk.py, closed loop, ``--connections`` connections) for ``--seconds``, the
median of ``--runs`` runs, baseline and vault runs interleaved so drifting machine load hits both.
Columns: successful requests/s, vault/baseline ratio, p50, p99, RSS of the largest serving process
(after load), and audit events appended per second during the vault's runs (one per grant read).
PostgreSQL: a throwaway local server (bench/pgserver.py), default durability. Loopback only;
every citizen fictitious (vault.demo).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from api.security import issuing
from api.settings import AppSettings
from bench import baselines, pgserver, wrk
from bench.bench_api import _port, _wait
from bench.bench_grants import CASEWORKER, FIELDS, PURPOSE
from bench.common import machine, median
from vault.grants.service import GrantRequest
from vault.models import citizens
from vault.runtime import Vault, open_vault

CLI = str(Path(sys.executable).parent / "citizen-vault")


def _rss_mb(master: int) -> float:
    """Largest resident set (MB) among the serving processes: the master's children, or the master."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))

    def rss(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    return max([rss(p) for p in children] or [rss(master)])


def single_grant(vault: Vault, settings: AppSettings) -> tuple[str, str]:
    """A grant of 5 fields of the first citizen (1,000,000 uses) and a caseworker token to read it."""
    with vault.data_engine.connect() as conn:
        first = str(conn.scalars(citizens.select().with_only_columns(citizens.c.id).limit(1)).one())
    grant = vault.grants.request(CASEWORKER, GrantRequest([first], PURPOSE, FIELDS, 86_400, 1_000_000))
    token = issuing.issue(
        vault.signing, settings.issuer, settings.audience, CASEWORKER.subject, "caseworker", "tax-office", 3600
    )
    return grant.id, token


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def _audit_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one())
    finally:
        engine.dispose()


def _backend(name: str, root: Path, env: dict[str, str], args: argparse.Namespace, port: int | None) -> list[str]:
    """Seed one vault, then measure every process count; table rows."""
    data = root / name
    env = dict(env)
    if port is not None:
        env["CITIZEN_VAULT_DATABASE_URL"] = pgserver.new_database(port)
        # Key store on PostgreSQL too: a PostgreSQL data store with a SQLite key store fails in
        # `demo` (seed_registry binds a UUID on sqlite3), a mixed set-up the tests do not cover.
        env["CITIZEN_VAULT_KEYSTORE_URL"] = pgserver.new_database(port)
    subprocess.run(
        [CLI, "--data-dir", str(data), "demo", "--citizens", str(args.citizens)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    settings = AppSettings(
        data_dir=data,
        database_url=env.get("CITIZEN_VAULT_DATABASE_URL"),
        keystore_url=env.get("CITIZEN_VAULT_KEYSTORE_URL"),
    )
    url = settings.resolved_database_url()
    vault = open_vault(settings)
    try:
        grant_id, token = single_grant(vault, settings)
    finally:
        vault.close()
    source = baselines.sqlite_app(str(data / "vault.db")) if port is None else baselines.pg_app(url)
    (root / f"bare_{name}.py").write_text(source)
    headers = {"Authorization": f"Bearer {token}"}
    rows = []
    for n in args.procs:
        vport, bport = _port(), _port()
        vault_proc = _spawn(
            [CLI, "--data-dir", str(data), "serve", "--port", str(vport), "--workers", str(n)], root, env
        )
        bare_cmd = [sys.executable, "-m", "uvicorn", f"bare_{name}:app", "--port", str(bport), "--workers", str(n)]
        bare_proc = _spawn([*bare_cmd, "--log-level", "warning"], root, env)
        try:
            vurl, burl = f"http://127.0.0.1:{vport}/v1/grants/{grant_id}/data", f"http://127.0.0.1:{bport}/bare"
            _wait(f"http://127.0.0.1:{vport}/healthz")
            _wait(burl)
            check = httpx.get(vurl, headers=headers, timeout=30)
            if check.status_code != 200:
                raise RuntimeError(f"grant read: {check.status_code} {check.text[:300]}")
            runs: dict[str, list[wrk.WrkRun]] = {"vault": [], "bare": []}
            audit_before, vault_seconds = _audit_count(url), 0.0
            for _ in range(args.runs):
                runs["bare"].append(wrk.run(burl, {}, args.connections, args.seconds))
                start = time.perf_counter()
                runs["vault"].append(wrk.run(vurl, headers, args.connections, args.seconds))
                vault_seconds += time.perf_counter() - start
            appends = (_audit_count(url) - audit_before) / vault_seconds
            rss = {"vault": _rss_mb(vault_proc.pid), "bare": _rss_mb(bare_proc.pid)}
        finally:
            _stop(vault_proc)
            _stop(bare_proc)
        rate = {k: median([r.ok_per_s for r in v]) for k, v in runs.items()}
        for kind in ("bare", "vault"):
            label = "grant read, 5 fields" if kind == "vault" else "honest baseline"
            failed = sum(r.failed for r in runs[kind])
            rows.append(
                f"| {name} | {n} | {label} | {rate[kind]:,.0f} | "
                f"{rate[kind] / rate['bare']:.2f} | {median([r.p50_ms for r in runs[kind]]):.1f} | "
                f"{median([r.p99_ms for r in runs[kind]]):.1f} | {rss[kind]:.0f} | "
                f"{f'{appends:,.0f}' if kind == 'vault' else '-'} | {failed} |"
            )
        print(rows[-2] + "\n" + rows[-1], file=sys.stderr, flush=True)  # progress
    return rows


def main() -> None:
    """Run the set; print one markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 s per run, 1 run, 1 and 2 processes unless --procs")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--procs", default=None, help="process counts (default 1,2,4; --quick: 1,2)")
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--citizens", type=int, default=1000)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 2.0, 1
    args.procs = [int(p) for p in (args.procs or ("1,2" if args.quick else "1,2,4")).split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    wrk.require()
    root = Path(tempfile.mkdtemp(prefix="cv-scale-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE"] = "100000000"
    load_start = os.getloadavg()[0]
    rows: list[str] = []
    try:
        if "sqlite" in backends:
            rows += _backend("sqlite", root, env, args, None)
        if "pg" in backends:
            with pgserver.server() as port:
                rows += _backend("pg", root, env, args, port)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"command: .venv/bin/python -m bench.scale {' '.join(sys.argv[1:])}".strip())
    print(
        f"machine: {machine()}; load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"wrk 1 thread, {args.connections} connections, {args.seconds:.0f} s per run, median of {args.runs}\n"
    )
    print(
        "| store | processes | endpoint | requests/s | ratio to baseline | p50 ms | p99 ms | RSS MB/process | "
        "audit appends/s | failed |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
