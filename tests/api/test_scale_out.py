"""Several real API processes (`serve --workers N`) on one data store: a grant with max_uses N
serves exactly N reads under concurrent load, each read has its audit event, and the audit chain
verifies. SQLite with 2 processes (writers queue on the cross-process lock), PostgreSQL with 2 and 4."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, func, select

from api.security import issuing
from api.settings import AppSettings
from tests.support.pg import PgServer
from tests.support.server_proc import free_port
from vault.audit.log import Actor
from vault.audit.tables import audit_events
from vault.grants.service import GrantRequest
from vault.models import citizens
from vault.runtime import open_vault

CLI = str(Path(sys.executable).parent / "citizen-vault")
CASEWORKER = Actor("caseworker@tax-office", "caseworker", "tax-office")
MAX_USES = 12
REQUESTS = 40


def _serve(data: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "--data-dir", str(data), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    pytest.fail("service did not start within 90 s")


def _allowed(conn: Connection, grant_id: str, citizen: str) -> int:
    """Allowed audit events naming this grant and citizen."""
    query = (
        select(func.count())
        .select_from(audit_events)
        .where(audit_events.c.grant_id == grant_id, audit_events.c.outcome == "allowed")
        .where(audit_events.c.citizen_id == citizen)
    )
    return int(conn.scalar(query) or 0)


@pytest.mark.parametrize(
    ("store", "workers"), [("sqlite", 2), ("postgresql", 2), ("postgresql", 4)], ids=["sqlite-2", "pg-2", "pg-4"]
)
def test_max_uses_holds_across_processes(
    store: str, workers: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env |= {"CITIZEN_VAULT_KEYRING_SCRYPT_N": "1024", "CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE": "1000000"}
    if store == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        env["CITIZEN_VAULT_DATABASE_URL"] = pg.new_database()
        env["CITIZEN_VAULT_KEYSTORE_URL"] = pg.new_database()
    subprocess.run([CLI, "--data-dir", str(data), "demo", "--citizens", "3"], env=env, check=True, capture_output=True)
    settings = AppSettings(
        data_dir=data,
        keyring_scrypt_n=1024,
        database_url=env.get("CITIZEN_VAULT_DATABASE_URL"),
        keystore_url=env.get("CITIZEN_VAULT_KEYSTORE_URL"),
    )
    vault = open_vault(settings)
    try:
        with vault.data_engine.connect() as conn:
            first = str(conn.scalars(select(citizens.c.id).limit(1)).one())
        grant = vault.grants.request(
            CASEWORKER, GrantRequest([first], "tax-assessment", ["given_name", "income"], 3600, MAX_USES)
        )
        with vault.data_engine.connect() as conn:
            before = _allowed(conn, grant.id, first)  # the grant's own request event
        token = issuing.issue(
            vault.signing, settings.issuer, settings.audience, CASEWORKER.subject, "caseworker", "tax-office", 600
        )
    finally:
        vault.close()
    proc, base = _serve(data, env, workers)
    try:
        # A new connection per request (Connection: close), so the requests spread over the workers.
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}

        def read(_: int) -> int:
            return httpx.get(f"{base}/v1/grants/{grant.id}/data", headers=headers, timeout=60).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(read, range(REQUESTS)))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert statuses.count(200) == MAX_USES
    assert all(400 <= s < 500 for s in statuses if s != 200), statuses
    vault = open_vault(settings)
    try:
        with vault.data_engine.connect() as conn:
            allowed = _allowed(conn, grant.id, first)
    finally:
        vault.close()
    assert allowed - before == MAX_USES
    verified = subprocess.run(
        [CLI, "--data-dir", str(data), "audit", "verify"], check=False, env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def test_killed_worker_loses_no_acknowledged_read_event(tmp_path: Path) -> None:
    """SIGKILL one of two SQLite workers mid-load: every 200 the clients got has its audit event,
    uses spent match events (no half-written read), and the chain verifies."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env |= {"CITIZEN_VAULT_KEYRING_SCRYPT_N": "1024", "CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE": "1000000"}
    subprocess.run([CLI, "--data-dir", str(data), "demo", "--citizens", "3"], env=env, check=True, capture_output=True)
    settings = AppSettings(data_dir=data, keyring_scrypt_n=1024)
    vault = open_vault(settings)
    try:
        with vault.data_engine.connect() as conn:
            first = str(conn.scalars(select(citizens.c.id).limit(1)).one())
        grant = vault.grants.request(CASEWORKER, GrantRequest([first], "tax-assessment", ["income"], 3600, 100_000))
        with vault.data_engine.connect() as conn:
            before = _allowed(conn, grant.id, first)
        token = issuing.issue(
            vault.signing, settings.issuer, settings.audience, CASEWORKER.subject, "caseworker", "tax-office", 600
        )
    finally:
        vault.close()
    proc, base = _serve(data, env, 2)
    try:
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}

        def read(_: int) -> int:
            try:
                return httpx.get(f"{base}/v1/grants/{grant.id}/data", headers=headers, timeout=30).status_code
            except httpx.HTTPError:
                return 0  # connection cut by the kill: not acknowledged

        with ThreadPoolExecutor(8) as pool:
            pending = pool.map(read, range(300))
            time.sleep(1.0)
            victims = _children(proc.pid)
            assert victims, "no worker processes found"
            os.kill(victims[0], signal.SIGKILL)
            statuses = list(pending)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    acknowledged = statuses.count(200)
    assert acknowledged > 0
    vault = open_vault(settings)
    try:
        with vault.data_engine.connect() as conn:
            events = _allowed(conn, grant.id, first) - before
        spent = vault.grants.get("tax-office", grant.id).uses
    finally:
        vault.close()
    assert events >= acknowledged  # a read may commit and then lose its response to the kill
    assert spent == events
    verified = subprocess.run(
        [CLI, "--data-dir", str(data), "audit", "verify"], check=False, env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
