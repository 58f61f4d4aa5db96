"""The vault core on both backends: SQLite (embedded default) and a real PostgreSQL server.

Plaintext never rests (the bytes of every file are searched), erasure reaches a backup taken
before it, rotation keeps everything readable, and moved ciphertext is refused.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from keys.dekstore import data_keys
from keys.rotation import rotate
from tests.support.pg import PgServer
from tests.support.stores import backend_vault, stored_bytes
from vault.errors import CannotDecrypt, ConfigurationError, Conflict, ValidationFailed
from vault.importer import Importer
from vault.models import citizens
from vault.runtime import Vault, init_vault, open_vault
from vault.settings import Settings

# Distinctive, clearly invented values that must never appear in any stored byte.
MARKERS = {
    "given_name": "Zyxwvutsrqpo",
    "family_name": "Qwertzuiopmarker",
    "national_id": "987-654-321",
    "email": "unmistakable.marker@example.org",
    "address": "77 Nonexistent Boulevard Markerton",
    "health_notes": "Fictional condition xylophonitis noted",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def vault_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    """A fresh vault on each backend (data store and key store in separate databases)."""
    vault = backend_vault(request, tmp_path)
    yield vault
    vault.close()


def test_plaintext_never_rests_after_import_and_edits(
    vault_env: Vault, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(MARKERS) + "\n")
    result = Importer(vault_env.profiles, workers=0).run(source, "civil-registry")
    assert result.accepted == 1
    cid = vault_env.profiles.lookup("national_id", MARKERS["national_id"])[0]
    vault_env.profiles.correct(cid, {"phone": "+999 123 4567"}, "tax-office")
    vault_env.profiles.rotate_dek(cid)
    assert vault_env.profiles.read(cid).values["given_name"] == MARKERS["given_name"]
    stored = stored_bytes(vault_env, request)
    assert len(stored) > 10_000
    for value in [*MARKERS.values(), "+999 123 4567"]:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert value.encode(encoding) not in stored, f"{value!r} found at rest ({encoding})"
    # The search itself can find a value when it is there (the test can fail).
    assert b"civil-registry" in stored


def test_round_trip_lookup_correct_and_unique(vault_env: Vault) -> None:
    profiles = vault_env.profiles
    cid = profiles.create(
        {"given_name": "Ilse", "family_name": "Oddsock", "national_id": "123 456 789"}, "civil-registry"
    )
    assert profiles.lookup("national_id", "123-456-789") == [cid]
    with pytest.raises(Conflict):
        profiles.create({"given_name": "Other", "family_name": "Person", "national_id": "123456789"}, "civil-registry")
    with pytest.raises(ValidationFailed) as info:
        profiles.create({"given_name": "X", "family_name": "Y", "income": "lots"}, "civil-registry")
    assert "income" in info.value.problems and "lots" not in str(info.value)
    profiles.correct(cid, {"email": "ILSE@example.org"}, "tax-office")
    assert profiles.lookup("email", " ilse@EXAMPLE.org ") == [cid]
    read = profiles.read(cid, ["email"])
    assert read.values == {"email": "ILSE@example.org"}
    assert read.provenance["email"].source_agency == "tax-office"
    with vault_env.key_engine.connect() as conn:
        assert len(conn.execute(select(data_keys)).all()) == 1  # the refused creations left no key


def test_ciphertext_moved_to_another_citizen_is_refused(vault_env: Vault) -> None:
    profiles = vault_env.profiles
    a = profiles.create({"given_name": "Ailsa", "family_name": "Plumtree"}, "civil-registry")
    b = profiles.create({"given_name": "Borek", "family_name": "Marrowby"}, "civil-registry")
    with vault_env.data_engine.begin() as conn:
        record = conn.scalar(select(citizens.c.record).where(citizens.c.id == a))
        conn.execute(update(citizens).where(citizens.c.id == b).values(record=record))
    with pytest.raises(CannotDecrypt):
        profiles.read(b)


def test_kek_rotation_and_retirement_keep_profiles_readable(vault_env: Vault) -> None:
    ids = [
        vault_env.profiles.create({"given_name": f"N{i}", "family_name": "Tumbleweed"}, "civil-registry")
        for i in range(25)
    ]
    result = rotate(vault_env.dekstore, batch_size=7)
    assert result.created_version and result.rewrapped == 25 and result.failed == 0
    vault_env.provider.retire_version(1)
    assert vault_env.dekstore.count_by_kek_version() == {2: 25}
    assert [vault_env.profiles.read(i).values["given_name"] for i in ids] == [f"N{i}" for i in range(25)]


def test_erasure_reaches_a_backup_taken_before_it(
    vault_env: Vault, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    profiles = vault_env.profiles
    cid = profiles.create(
        {"given_name": "Fenna", "family_name": "Zephyrine", "email": "fenna@example.org", "income": 1234},
        "civil-registry",
    )
    backup_url = _backup(vault_env, request, tmp_path)
    report = profiles.erase(cid)
    assert report.destroyed_fields == ["email", "income"]
    assert set(report.held_fields) == {"given_name", "family_name"}
    erased = profiles.read(cid)
    assert erased.status == "erased" and erased.values == {"given_name": "Fenna", "family_name": "Zephyrine"}
    assert profiles.lookup("email", "fenna@example.org") == []
    # Restore the old backup next to the current key store: the erased data stays unreadable.
    restored = open_vault(vault_env.settings.model_copy(update={"database_url": backup_url}))
    try:
        with pytest.raises(CannotDecrypt):
            restored.profiles.read(cid, ["income"])
        with pytest.raises(CannotDecrypt):
            restored.profiles.read(cid, ["given_name"])  # even held fields: the old copy used the shredded key
    finally:
        restored.close()


def _backup(vault: Vault, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if vault.data_engine.dialect.name == "sqlite":
        target = tmp_path / "backup.db"
        source = sqlite3.connect(str(vault.data_engine.url.database))
        with sqlite3.connect(target) as dest:
            source.backup(dest)
        source.close()
        return f"sqlite:///{target}"
    server: PgServer = request.getfixturevalue("pg_server")
    vault.data_engine.dispose()
    name = "b_" + uuid.uuid4().hex[:12]
    source_db = vault.data_engine.url.database
    with server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source_db}"')
    return server.url(name)


def test_separate_key_store_is_required(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'same.db'}"
    with pytest.raises(ConfigurationError, match="key store"):
        init_vault(Settings(data_dir=tmp_path, database_url=url, keystore_url=url, keyring_scrypt_n=2**10))
