"""/metrics under `serve --workers 2` (issue 18): every worker writes its figures to the directory
`serve` prepares (PROMETHEUS_MULTIPROC_DIR), and whichever worker answers a scrape sums them all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server_proc import CLI, clean_env, free_port, initialised, running

pytestmark = pytest.mark.slow


def test_metrics_sum_every_workers_requests(tmp_path: Path) -> None:
    data = tmp_path / "v"
    env = clean_env(CITIZEN_VAULT_DATA_DIR=str(data))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    initialised(data, env)
    port = free_port()
    command = [CLI, "serve", "--port", str(port), "--workers", "2"]
    with running(command, env, port, tmp_path / "stderr.log") as srv, httpx.Client(base_url=srv.base) as client:
        before = _healthz_count(client)
        for _ in range(30):  # new connections: the kernel spreads them over both workers
            assert httpx.get(f"{srv.base}/healthz", timeout=10).status_code == 200
        after = [_healthz_count(client) for _ in range(4)]  # any worker may answer: all agree
    assert (data / "metrics").is_dir() and list((data / "metrics").glob("*.db"))
    assert all(n >= before + 30 for n in after), (before, after)


def _healthz_count(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "cv_http_requests_total" and s.labels.get("route") == "/healthz"
    )
