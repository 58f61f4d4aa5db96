"""The real service under uvicorn with two worker processes: a role removed or a client revoked
in the database is refused on the next request in every worker, without a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.security import issuing
from api.settings import AppSettings
from vault.runtime import open_vault

CLI = str(Path(sys.executable).parent / "citizen-vault")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, AppSettings]]:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_KEYRING_SCRYPT_N"] = "1024"
    subprocess.run([CLI, "--data-dir", str(data), "demo", "--citizens", "5"], env=env, check=True, capture_output=True)
    port = _port()
    proc = subprocess.Popen(
        [CLI, "--data-dir", str(data), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("service did not start within 60 s")
        yield base, AppSettings(data_dir=data, keyring_scrypt_n=1024)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_role_removal_and_client_revocation_reach_every_worker(server: tuple[str, AppSettings]) -> None:
    base, settings = server
    vault = open_vault(settings)
    try:
        registrar = issuing.issue(
            vault.signing,
            settings.issuer,
            settings.audience,
            "registrar@civil-registry",
            "registrar",
            "civil-registry",
            600,
        )
        client = vault.registry.clients("tax-office")[0]
        app = issuing.issue(
            vault.signing, settings.issuer, settings.audience, client.client_id, "agency-app", "tax-office", 600
        )
        url = f"{base}/v1/citizens?national_id=900-000-001"
        # A new connection per request (Connection: close), so the requests spread over both workers.
        with httpx.Client(timeout=10, headers={"Connection": "close"}) as http:
            # Warm both workers (and their verified-token caches) before the change.
            for _ in range(20):
                assert http.get(url, headers={"Authorization": f"Bearer {registrar}"}).status_code == 200
                assert http.get(url, headers={"Authorization": f"Bearer {app}"}).status_code == 200
            vault.registry.unassign("registrar@civil-registry", "civil-registry", "registrar")
            vault.registry.revoke_client(client.client_id)
            for _ in range(20):
                refused = http.get(url, headers={"Authorization": f"Bearer {registrar}"})
                assert refused.status_code == 403 and refused.json()["reason"].startswith("role-not-held")
                revoked = http.get(url, headers={"Authorization": f"Bearer {app}"})
                assert revoked.status_code == 401 and revoked.json()["reason"] == "client-revoked"
    finally:
        vault.close()
