"""Fault drills (issue 18): the database going away and coming back (a PostgreSQL server of the
test's own, stopped and started by it), the key provider unavailable, clock skew around the token
leeway. All data is fictitious."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from keys.pkcs11 import reinitialize
from tests.support.api_world import ODILE
from tests.support.pg import _as_postgres, _bindir, _free_port
from tests.support.softhsm import make_token, require_softhsm
from vault.demo_registry import seed_registry
from vault.runtime import init_vault


@dataclass
class OwnServer:
    """A PostgreSQL server this test may stop and start (the session's shared one must stay up)."""

    bindir: Path
    root: Path
    port: int

    def ctl(self, *args: str) -> None:
        datadir = str(self.root / "data")
        cmd = [str(self.bindir / "pg_ctl"), "-D", datadir, "-l", str(self.root / "log"), *args]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True)

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} -c fsync=off"
        self.ctl("-o", opts, "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture
def own_pg() -> Iterator[OwnServer]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL server binaries not found")
        pytest.skip("PostgreSQL server binaries not found")
    root = Path(tempfile.mkdtemp(prefix="cv-pg-drill-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    init = [str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    subprocess.run(_as_postgres(init), check=True, capture_output=True)
    server = OwnServer(bindir, root, _free_port())
    server.start()
    for name in ("drill_data", "drill_keys"):
        psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-c"]
        subprocess.run(_as_postgres([*psql, f"CREATE DATABASE {name}"]), check=True, capture_output=True)
    try:
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_going_away_is_503_with_retry_after_and_recovers_without_restart(
    own_pg: OwnServer, tmp_path: Path
) -> None:
    settings = AppSettings(
        data_dir=tmp_path,
        keyring_scrypt_n=2**10,
        database_url=own_pg.url("drill_data"),
        keystore_url=own_pg.url("drill_keys"),
    )
    vault = init_vault(settings)
    seed_registry(vault.registry)
    citizen = vault.profiles.create(ODILE, "civil-registry")
    token = issuing.issue(vault.signing, settings.issuer, settings.audience, str(citizen), "citizen", None, 600)
    me = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, vault), raise_server_exceptions=False) as client:
        assert client.get("/v1/me", headers=me).status_code == 200

        own_pg.stop()
        away = client.get("/v1/me", headers=me)
        assert away.status_code == 503, away.text
        assert away.headers["retry-after"] == "5"
        assert away.headers["content-type"].startswith("application/problem+json")
        assert away.json()["reason"] == "store-unavailable"
        assert ODILE["given_name"] not in away.text
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.headers["retry-after"] == "5"
        assert not_ready.json()["checks"]["data_store"] == "unavailable"

        own_pg.start()
        back = client.get("/v1/me", headers=me)
        assert back.status_code == 200, back.text
        assert back.json()["fields"]["given_name"] == ODILE["given_name"]
        assert client.get("/readyz").status_code == 200


@pytest.mark.softhsm
def test_key_provider_unavailable_fails_closed_with_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HSM's token disappears under a running service (its files moved away): reads that need
    it are 503, nothing is decrypted, and readiness names the part."""
    require_softhsm()
    token = make_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    reinitialize(token.module)
    settings = AppSettings(
        data_dir=tmp_path / "data",
        key_provider="pkcs11",
        pkcs11_module=token.module,
        pkcs11_token_label=token.label,
        pkcs11_pin=SecretStr(token.pin),
    )
    vault = init_vault(settings)
    seed_registry(vault.registry)
    citizen = vault.profiles.create(ODILE, "civil-registry")
    jwt = issuing.issue(vault.signing, settings.issuer, settings.audience, str(citizen), "citizen", None, 600)
    me = {"Authorization": f"Bearer {jwt}"}
    tokens = tmp_path / "softhsm" / "tokens"
    with TestClient(create_app(settings, vault), raise_server_exceptions=False) as client:
        assert client.get("/v1/me", headers=me).status_code == 200
        tokens.rename(tmp_path / "softhsm" / "away")
        try:
            down = client.get("/v1/me", headers=me)
            ready = client.get("/readyz")
        finally:
            (tmp_path / "softhsm" / "away").rename(tokens)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert ODILE["given_name"] not in down.text and ODILE["family_name"] not in down.text
        assert ready.status_code == 503 and ready.json()["checks"]["keys"] == "unavailable"
        # SoftHSM forgets a token's objects once its files vanish: recovery is a restart (runbook).


@pytest.mark.parametrize(
    ("issuer_clock_offset", "ttl", "accepted"),
    [
        (20, 600, True),  # the issuer's clock 20 s ahead: iat/nbf in our future, inside the 30 s leeway
        (120, 600, False),  # 2 minutes ahead: not yet valid
        (-(600 + 20), 600, True),  # expired 20 s ago by our clock: inside the leeway
        (-(600 + 120), 600, False),  # expired 2 minutes ago
    ],
)
def test_clock_skew_inside_the_token_leeway_is_accepted_outside_refused(
    tmp_path: Path, issuer_clock_offset: int, ttl: int, accepted: bool
) -> None:
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10)
    vault = init_vault(settings)
    seed_registry(vault.registry)
    citizen = vault.profiles.create(ODILE, "civil-registry")
    skewed = time.time() + issuer_clock_offset
    jwt = issuing.issue(vault.signing, settings.issuer, settings.audience, str(citizen), "citizen", None, ttl, skewed)
    with TestClient(create_app(settings, vault), raise_server_exceptions=False) as client:
        answer = client.get("/v1/me", headers={"Authorization": f"Bearer {jwt}"})
    if accepted:
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 401, answer.text
        assert ODILE["given_name"] not in answer.text
