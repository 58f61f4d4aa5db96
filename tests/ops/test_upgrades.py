"""Upgrades (issue 18): a data directory at every earlier migration head of the data store, holding
citizens, is brought to the latest schema by `citizen-vault db upgrade`, data intact.

Each directory is filled by the current code and then taken down to the earlier head with the
migrations' own downgrades (which keep the tables that head has: profiles and blind index from
v0001, the audit log from v0003), so every earlier schema is exercised with real encrypted rows.
Also: `alembic -n data|keys upgrade head` run directly (alembic.ini). All data is fictitious."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from api.cli import app
from keys import migrate
from tests.support.importer_helpers import FAST_SCRYPT_N
from vault import db, demo
from vault.runtime import init_vault, open_vault
from vault.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _earlier_heads() -> list[str]:
    cfg = migrate._config(db.DATA_SCRIPTS, db.DATA_VERSION_TABLE)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    return sorted(r.revision for r in script.walk_revisions() if r.revision != head)


@pytest.mark.parametrize("revision", _earlier_heads())
def test_db_upgrade_from_every_earlier_head_keeps_the_data(tmp_path: Path, revision: str) -> None:
    settings = Settings(data_dir=tmp_path / "v", keyring_scrypt_n=FAST_SCRYPT_N)
    vault = init_vault(settings)
    try:
        ids = [vault.profiles.create(demo.profile(i), "civil-registry") for i in range(5)]
        before = {c: vault.profiles.read(c).values for c in ids}
    finally:
        vault.close()
    engine = db.data_engine(settings.resolved_database_url())
    try:
        migrate.downgrade(engine, db.DATA_SCRIPTS, db.DATA_VERSION_TABLE, revision)
        assert not db.is_current(engine)
    finally:
        engine.dispose()

    env = {"CITIZEN_VAULT_KEYRING_SCRYPT_N": str(FAST_SCRYPT_N)}
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output

    vault = open_vault(settings)
    try:
        for i, citizen in enumerate(ids):
            assert vault.profiles.read(citizen).values == before[citizen]
            assert vault.profiles.lookup("national_id", demo.profile(i)["national_id"]) == [citizen]
    finally:
        vault.close()
    verified = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output


def test_alembic_run_directly_upgrades_both_stores(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")},
        "CITIZEN_VAULT_DATA_DIR": str(tmp_path / "v"),
        "PYTHONPATH": str(ROOT),
    }
    alembic = Path(sys.executable).parent / "alembic"
    for name in ("data", "keys"):
        subprocess.run(
            [str(alembic), "-c", str(ROOT / "alembic.ini"), "-n", name, "upgrade", "head"],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
    settings = Settings(data_dir=tmp_path / "v", keyring_scrypt_n=FAST_SCRYPT_N)
    data = db.data_engine(settings.resolved_database_url())
    keys = db.data_engine(settings.resolved_keystore_url())
    try:
        assert db.is_current(data) and migrate.keystore_is_current(keys)
    finally:
        data.dispose()
        keys.dispose()
