"""Restore drill (issue 18), on SQLite and on the real PostgreSQL: back up the data, make changes,
erase a citizen, back up the keys, restore both into a fresh data directory (fresh databases);
`audit verify` passes, the citizen erased after the backup stays unreadable AND unfindable, the
others read, and the restored service answers ready. All data is fictitious."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from api.app import create_app
from api.cli import app
from api.settings import AppSettings
from tests.support.importer_helpers import FAST_SCRYPT_N
from tests.support.pg import PgServer
from vault import demo
from vault.fieldcipher import SLOT_PROFILE
from vault.runtime import init_vault, open_vault
from vault.settings import Settings

PASSPHRASE = "correct horse battery staple, invented"


@dataclass
class Site:
    """One vault's location: a data directory and, on PostgreSQL, its two databases."""

    data_dir: Path
    database_url: str | None = None
    keystore_url: str | None = None

    def env(self) -> dict[str, str]:
        env = {"CITIZEN_VAULT_KEYRING_SCRYPT_N": str(FAST_SCRYPT_N)}
        if self.database_url and self.keystore_url:
            env |= {"CITIZEN_VAULT_DATABASE_URL": self.database_url, "CITIZEN_VAULT_KEYSTORE_URL": self.keystore_url}
        return env

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            keyring_scrypt_n=FAST_SCRYPT_N,
            database_url=self.database_url,
            keystore_url=self.keystore_url,
        )

    def cli(self, *args: str) -> Result:
        result = CliRunner().invoke(app, ["--data-dir", str(self.data_dir), *args], env=self.env())
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Site, Site]]:
    if request.param == "sqlite":
        yield Site(tmp_path / "live"), Site(tmp_path / "fresh")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    yield (
        Site(tmp_path / "live", server.new_database(), server.new_database()),
        Site(tmp_path / "fresh", server.new_database(), server.new_database()),
    )


def test_restore_drill(sites: tuple[Site, Site], tmp_path: Path) -> None:
    live, fresh = sites
    vault = init_vault(live.settings())
    try:
        ids = [vault.profiles.create(demo.profile(i), "civil-registry") for i in range(5)]
    finally:
        vault.close()
    data_backup = tmp_path / "data.backup"
    live.cli("backup", str(data_backup))
    assert stat.S_IMODE(data_backup.stat().st_mode) == 0o600

    vault = open_vault(live.settings())
    try:
        later = vault.profiles.create(demo.profile(50), "civil-registry")
        vault.profiles.erase(ids[2])
    finally:
        vault.close()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    key_backup = tmp_path / "keys.backup"
    live.cli("keys", "backup", str(key_backup), "--passphrase-file", str(passphrase))
    assert stat.S_IMODE(key_backup.stat().st_mode) == 0o600

    fresh.cli("keys", "restore", str(key_backup), "--passphrase-file", str(passphrase))
    restored = fresh.cli("restore", str(data_backup))
    assert "Citizens purged (their data keys were destroyed after the backup): 1" in restored.stdout
    verified = fresh.cli("audit", "verify")
    assert "intact" in verified.stdout.lower(), verified.stdout

    vault = open_vault(fresh.settings())
    try:
        erased_nid = demo.profile(2)["national_id"]
        assert vault.profiles.lookup("national_id", erased_nid) == []  # unfindable
        # Unreadable: the data key is gone, and the restored ciphertext was dropped with the index.
        assert not any(slot == SLOT_PROFILE for _, slot, _ in vault.dekstore.existing_refs([ids[2].bytes]))
        gone = vault.profiles.read(ids[2])
        assert gone.status == "erased" and gone.values == {}
        kept = vault.profiles.read(ids[0])
        assert kept.values["national_id"] == demo.profile(0)["national_id"]
        assert vault.profiles.lookup("national_id", demo.profile(1)["national_id"]) == [ids[1]]
        assert vault.profiles.lookup("national_id", demo.profile(50)["national_id"]) == []  # after the backup
        assert later not in vault.profiles.lookup("national_id", demo.profile(50)["national_id"])
    finally:
        vault.close()
    settings = AppSettings(**fresh.settings().model_dump())
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200


def test_restore_refuses_a_store_that_is_not_empty_and_a_wrong_passphrase(tmp_path: Path) -> None:
    live = Site(tmp_path / "live")
    init_vault(live.settings()).close()
    backup = tmp_path / "data.backup"
    live.cli("backup", str(backup))
    result = CliRunner().invoke(app, ["--data-dir", str(live.data_dir), "restore", str(backup)], env=live.env())
    assert result.exit_code == 2 and "not empty" in result.output
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE)
    live.cli("keys", "backup", str(tmp_path / "k"), "--passphrase-file", str(secret))
    secret.write_text(PASSPHRASE + " but wrong")
    other = ["--data-dir", str(tmp_path / "other")]
    args = [*other, "keys", "restore", str(tmp_path / "k"), "--passphrase-file", str(secret)]
    result = CliRunner().invoke(app, args, env=live.env())
    assert result.exit_code == 2 and "wrong passphrase" in result.output
    assert not (tmp_path / "other" / "keyring.json").exists()
