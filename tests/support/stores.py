"""A fresh vault on either backend, and every byte it keeps at rest (the storage tests' helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pg import PgServer
from vault.runtime import Vault, init_vault
from vault.settings import Settings


def backend_vault(request: pytest.FixtureRequest, tmp_path: Path) -> Vault:
    """A new vault on ``request.param`` ("sqlite" or "postgresql": data and key stores in separate databases)."""
    settings = Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10)
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        settings = Settings(
            data_dir=tmp_path / "data",
            keyring_scrypt_n=2**10,
            database_url=server.new_database(),
            keystore_url=server.new_database(),
        )
    return init_vault(settings)


def stored_bytes(vault: Vault, request: pytest.FixtureRequest) -> bytes:
    """Every byte the vault has at rest: data directory files, and PostgreSQL's data directory."""
    blobs = [p.read_bytes() for p in vault.settings.data_dir.rglob("*") if p.is_file()]
    if vault.data_engine.dialect.name == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        with server.admin() as conn:
            conn.execute("CHECKPOINT")
        blobs += [p.read_bytes() for p in server.datadir.rglob("*") if p.is_file()]
    return b"".join(blobs)
