"""SIGKILL of the API process under write load (issue 18): every acknowledged write is there, no
profile without its audit event (nor an event without its profile), the chain verifies, and the
restarted service serves. All data is fictitious (vault.demo)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.security import issuing
from api.settings import AppSettings
from tests.support.server_proc import CLI, clean_env, free_port, initialised, running
from vault import demo
from vault.audit.tables import audit_events
from vault.demo_registry import seed_registry
from vault.models import citizens
from vault.runtime import open_vault

pytestmark = pytest.mark.slow


def _writer(base: str, headers: dict[str, str], start: int, stop: threading.Event, acked: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        i = start
        while not stop.is_set():
            try:
                answer = client.post("/v1/citizens", json={"fields": demo.profile(i)}, headers=headers)
            except httpx.HTTPError:
                return  # the server is gone
            if answer.status_code == 201:
                acked.append(answer.json()["id"])
            i += 1


def test_sigkill_under_write_load_loses_no_acknowledged_write_and_the_chain_verifies(tmp_path: Path) -> None:
    data = tmp_path / "v"
    env = clean_env(CITIZEN_VAULT_DATA_DIR=str(data))
    initialised(data, env)
    settings = AppSettings(data_dir=data, keyring_scrypt_n=1024)
    vault = open_vault(settings)
    try:
        seed_registry(vault.registry)
        who = ("registrar@civil-registry", "registrar", "civil-registry")
        token = issuing.issue(vault.signing, settings.issuer, settings.audience, *who, 900)
    finally:
        vault.close()
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    command = [CLI, "serve", "--port", str(port)]
    acked: list[str] = []
    with running(command, env, port, tmp_path / "stderr.log") as server:
        stop = threading.Event()
        writers = [
            threading.Thread(target=_writer, args=(server.base, headers, k * 100_000, stop, acked)) for k in range(4)
        ]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 30
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(server.proc.pid, signal.SIGKILL)  # mid-write: requests are in flight
        server.proc.wait(timeout=30)
        stop.set()
        for w in writers:
            w.join(timeout=30)
    assert len(acked) >= 40

    vault = open_vault(settings)
    try:
        with vault.data_engine.connect() as conn:
            stored = {str(c) for c in conn.scalars(select(citizens.c.id))}
            audited = {
                str(c)
                for c in conn.scalars(
                    select(audit_events.c.citizen_id).where(
                        audit_events.c.action == "citizens.create", audit_events.c.outcome == "allowed"
                    )
                )
            }
        assert set(acked) <= stored  # every acknowledged write survived
        assert stored == audited  # no profile without its event, no event without its profile
        sample = uuid.UUID(acked[-1])
        assert vault.profiles.read(sample).values["national_id"]
    finally:
        vault.close()
    verified = subprocess.run([CLI, "audit", "verify"], env=env, capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    port = free_port()
    with running([CLI, "serve", "--port", str(port)], env, port, tmp_path / "stderr2.log") as server:
        assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200
        again = httpx.get(f"{server.base}/v1/citizens/{acked[0]}", headers=headers, timeout=10)
        assert again.status_code == 200, again.text
