"""Every file of the embedded store is private to its owner (0600, the directory 0700), SQLite's
-wal and -shm files included; a loose one is refused in production and repaired, loudly, in
development (issue 19, finding 17)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from vault.errors import ConfigurationError
from vault.runtime import init_vault, open_vault
from vault.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _exposed(data: Path) -> dict[str, str]:
    found = {p.name: oct(_mode(p)) for p in data.iterdir() if _mode(p) & 0o077}
    if _mode(data) & 0o077:
        found["."] = oct(_mode(data))
    return found


@pytest.fixture
def loose_umask() -> object:
    """The umask a shell usually has (group and others may read new files)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_every_data_file_is_created_private_wal_and_shm_included(tmp_path: Path, loose_umask: object) -> None:
    data = tmp_path / "data"
    vault = init_vault(Settings(data_dir=data, keyring_scrypt_n=2**10))
    try:
        vault.registry.agencies()  # open connections: SQLite creates -wal and -shm now
        names = {p.name for p in data.iterdir()}
        assert {"vault.db", "vault.db-wal", "vault.db-shm", "keystore.db", "keystore.db-wal"} <= names
        assert _exposed(data) == {}
    finally:
        vault.close()


def _loosened(tmp_path: Path, **settings: object) -> tuple[Settings, Path]:
    s = Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10, **settings)  # type: ignore[arg-type]
    init_vault(s).close()
    target = s.data_dir / "vault.db"
    os.chmod(target, 0o644)  # as versions before this fix created it
    return s, target


def test_production_refuses_to_open_a_vault_whose_files_others_can_read(tmp_path: Path) -> None:
    s, target = _loosened(tmp_path, environment="production", master_secret=SecretStr("fictitious secret 1"))
    with pytest.raises(ConfigurationError, match=r"vault\.db") as refused:
        open_vault(s)
    assert "chmod" in str(refused.value)
    assert _mode(target) == 0o644  # not silently changed: the operator decides


def test_development_repairs_loose_modes_and_says_so(tmp_path: Path) -> None:
    s, target = _loosened(tmp_path)
    vault = open_vault(s)
    try:
        assert _mode(target) == 0o600
        assert any("vault.db" in w and "0600" in w for w in vault.warnings)
    finally:
        vault.close()
