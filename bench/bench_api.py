"""HTTP benchmark: authenticated GET /v1/me versus a bare FastAPI endpoint doing one SQLite read,
both under uvicorn (1 worker) on loopback, measured in the same run; plus token verification cost.

Run: .venv/bin/python -m bench.bench_api [--seconds 10] [--concurrency 16] [--runs 3]
Load from wrk (bench/wrk.py), bounded in time, only against 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx

from api.security import issuing
from api.security.tokens import TokenVerifier
from api.settings import AppSettings
from bench import baselines, wrk
from bench.common import machine, median
from vault import demo
from vault.runtime import open_vault

# The honest baseline (issue 16): async def, one persistent connection per process, one row by
# primary key. The old one (sync route, a new SQLite connection per request) flattered the vault.
BARE_APP = baselines.SQLITE_APP


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    """Run and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="per load run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cv-api-"))
    data = root / "data"
    cli = str(Path(sys.executable).parent / "citizen-vault")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE"] = "10000000"
    subprocess.run(
        [cli, "--data-dir", str(data), "demo", "--citizens", "100"], env=env, check=True, capture_output=True
    )
    settings = AppSettings(data_dir=data)
    vault = open_vault(settings)
    citizen = vault.profiles.lookup("national_id", demo.profile(0)["national_id"])[0]
    token = issuing.issue(vault.signing, settings.issuer, settings.audience, str(citizen), "citizen", None, 3600)
    (root / "bare_app.py").write_text(BARE_APP.format(db=data / "vault.db"))
    vport, bport = _port(), _port()
    procs = [
        subprocess.Popen(
            [cli, "--data-dir", str(data), "serve", "--port", str(vport)],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bport), "--log-level", "warning"],
            cwd=root,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        vault_url, bare_url = f"http://127.0.0.1:{vport}/v1/me", f"http://127.0.0.1:{bport}/bare"
        _wait(f"http://127.0.0.1:{vport}/healthz")
        _wait(bare_url)
        results: dict[str, list[wrk.WrkRun]] = {"vault": [], "bare": []}
        for _ in range(args.runs):  # interleaved, so drifting machine load affects both alike
            results["bare"].append(wrk.run(bare_url, {}, args.concurrency, args.seconds))
            results["vault"].append(
                wrk.run(vault_url, {"Authorization": f"Bearer {token}"}, args.concurrency, args.seconds)
            )
        print(f"command: .venv/bin/python -m bench.bench_api {' '.join(sys.argv[1:])}".strip())
        print(f"machine: {machine()}; load average: {os.getloadavg()[0]:.2f}")
        print(
            f"load: wrk, 1 thread, {args.concurrency} connections, {args.seconds:.0f} s per run\n\n"
            f"| endpoint | successful requests/s (median of {args.runs}) | p50 ms | p99 ms | failed |\n|---|---|---|---|---|"
        )
        rates = {}
        for name, runs in results.items():
            rates[name] = median([r.ok_per_s for r in runs])
            label = (
                "GET /v1/me (token, role, policy, decrypt 9 fields)"
                if name == "vault"
                else "honest baseline: async def, persistent SQLite connection, read by key"
            )
            failed = f"{sum(r.failed for r in runs):,} of {sum(r.requests for r in runs):,}"
            print(
                f"| {label} | {rates[name]:,.0f} | {median([r.p50_ms for r in runs]):.1f} | "
                f"{median([r.p99_ms for r in runs]):.1f} | {failed} |"
            )
        print(f"\nratio vault / bare: {rates['vault'] / rates['bare']:.2f} (target >= 0.6)")
        verifier = TokenVerifier([issuing.vault_issuer(vault.signing, settings.issuer, settings.audience, 3600)])
        verifier.verify(token)
        cached = median([timeit.timeit(lambda: verifier.verify(token), number=2000) / 2000 * 1e6 for _ in range(5)])

        def cold() -> None:
            verifier.forget()
            verifier.verify(token)

        uncached = median([timeit.timeit(cold, number=200) / 200 * 1e6 for _ in range(5)])
        print(
            f"token verification: {cached:.1f} µs cached (the request path), {uncached:.0f} µs uncached (target <= 100 µs)"
        )
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        vault.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
