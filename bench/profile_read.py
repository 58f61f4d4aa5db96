"""Where the time of one grant read (5 fields, SQLite) goes: mean time of ``--requests`` sequential
`GET /v1/grants/{id}/data` through the real application in-process (Starlette's TestClient, no
socket) and of the vault call alone, then a cProfile of the vault call (`vault.grants.read`). Findings: docs/performance.md.

Run: .venv/bin/python -m bench.profile_read [--requests 500] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import AppSettings
from bench.bench_grants import CASEWORKER
from bench.scale import single_grant
from vault.runtime import open_vault


def main() -> None:
    """Profile and print the top functions by own time and by cumulative time."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cv-prof-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    cli = str(Path(sys.executable).parent / "citizen-vault")
    subprocess.run(
        [cli, "--data-dir", str(root), "demo", "--citizens", "100"], env=env, check=True, capture_output=True
    )
    settings = AppSettings(data_dir=root, rate_limit_per_minute=100_000_000)
    vault = open_vault(settings)
    try:
        grant_id, token = single_grant(vault, settings)
        with TestClient(create_app(settings, vault), base_url="http://127.0.0.1") as client:
            headers = {"Authorization": f"Bearer {token}"}
            url = f"/v1/grants/{grant_id}/data"
            for _ in range(20):  # warm caches as a running server's are
                response = client.get(url, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"grant read: {response.status_code} {response.text[:300]}")
            began = time.perf_counter()
            for _ in range(args.requests):
                client.get(url, headers=headers)
            http_ms = (time.perf_counter() - began) * 1000 / args.requests
        # cProfile sees only its own thread, and the app serves the read on worker threads: so the
        # vault's part is profiled here, called directly the way the route calls it.
        began = time.perf_counter()
        for _ in range(args.requests):
            vault.grants.read(CASEWORKER, grant_id, None, 10)
        service_ms = (time.perf_counter() - began) * 1000 / args.requests
        print(f"per read, sequential, in-process: whole app {http_ms:.2f} ms, vault.grants.read {service_ms:.2f} ms")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            vault.grants.read(CASEWORKER, grant_id, None, 10)
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top + 15)
    finally:
        vault.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
