"""The local keyring file: permissions, master-secret protection, versions, cross-process refresh."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from keys.errors import DecryptionFailed, KeyringError, UnknownKeyVersion
from keys.local import LocalKeyProvider
from keys.memory import InMemoryKeyProvider

SECRET = b"correct horse battery staple (fictitious)"
N = 2**10  # small scrypt cost: these tests are about behaviour, not KDF strength


def make(tmp_path: Path, secret: bytes | None = SECRET) -> LocalKeyProvider:
    return LocalKeyProvider.create(tmp_path / "keyring.json", secret, scrypt_n=N)


def test_keyring_file_is_private(tmp_path: Path) -> None:
    provider = make(tmp_path)
    assert stat.S_IMODE(os.stat(provider.path).st_mode) == 0o600


def test_keyring_readable_by_others_is_refused(tmp_path: Path) -> None:
    provider = make(tmp_path)
    os.chmod(provider.path, 0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        LocalKeyProvider(provider.path, SECRET)


def test_protected_keyring_holds_no_key_material_in_clear(tmp_path: Path) -> None:
    provider = make(tmp_path)
    outer = json.loads(provider.path.read_text())
    assert outer["protected"] is True
    assert "keyring" not in outer and "keks" not in provider.path.read_text()
    version, wrapped = provider.wrap(b"k" * 32, b"aad")
    assert LocalKeyProvider(provider.path, SECRET).unwrap(version, wrapped, b"aad") == b"k" * 32


def test_wrong_master_secret_refuses_to_open(tmp_path: Path) -> None:
    provider = make(tmp_path)
    with pytest.raises(KeyringError, match="wrong master secret"):
        LocalKeyProvider(provider.path, b"not the secret")


def test_missing_master_secret_refuses_to_open(tmp_path: Path) -> None:
    provider = make(tmp_path)
    with pytest.raises(KeyringError, match="CITIZEN_VAULT_MASTER_SECRET"):
        LocalKeyProvider(provider.path, None)


def test_unprotected_keyring_with_a_secret_set_is_refused(tmp_path: Path) -> None:
    provider = make(tmp_path, secret=None)
    with pytest.raises(KeyringError, match="not protected"):
        LocalKeyProvider(provider.path, SECRET)


def test_missing_keyring_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="citizen-vault init"):
        LocalKeyProvider(tmp_path / "keyring.json", None)


def test_tampered_keyring_is_refused(tmp_path: Path) -> None:
    provider = make(tmp_path)
    outer = json.loads(provider.path.read_text())
    sealed = bytearray(outer["sealed"].encode())
    sealed[20] = ord("A") if sealed[20] != ord("A") else ord("B")
    outer["sealed"] = sealed.decode()
    provider.path.write_text(json.dumps(outer))
    with pytest.raises(KeyringError):
        LocalKeyProvider(provider.path, SECRET)


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    make(tmp_path)
    with pytest.raises(KeyringError, match="already exists"):
        make(tmp_path)


def test_wrap_binds_associated_data_and_version(tmp_path: Path) -> None:
    provider = make(tmp_path)
    version, wrapped = provider.wrap(b"d" * 32, b"owner-1")
    with pytest.raises(DecryptionFailed):
        provider.unwrap(version, wrapped, b"owner-2")
    with pytest.raises(UnknownKeyVersion):
        provider.unwrap(version + 5, wrapped, b"owner-1")


def test_rotation_keeps_old_versions_readable_until_retired(tmp_path: Path) -> None:
    provider = make(tmp_path)
    v1, old = provider.wrap(b"d" * 32, b"a")
    v2 = provider.create_version()
    assert v2 == v1 + 1 and provider.active_version() == v2
    assert provider.wrap(b"d" * 32, b"a")[0] == v2
    assert provider.unwrap(v1, old, b"a") == b"d" * 32
    with pytest.raises(ValueError, match="active"):
        provider.retire_version(v2)
    provider.retire_version(v1)
    with pytest.raises(UnknownKeyVersion):
        provider.unwrap(v1, old, b"a")
    states = {i.version: i.state for i in provider.versions()}
    assert states == {v1: "retired", v2: "active"}


def test_retiring_removes_the_key_material_from_the_file(tmp_path: Path) -> None:
    provider = make(tmp_path, secret=None)
    provider.create_version()
    provider.retire_version(1)
    keks = json.loads(provider.path.read_text())["keyring"]["keks"]
    assert [("key" in k, k["state"]) for k in keks] == [(False, "retired"), (True, "active")]


def test_another_process_sees_a_new_version(tmp_path: Path) -> None:
    first = make(tmp_path)
    second = LocalKeyProvider(first.path, SECRET)
    v2 = first.create_version()
    version, wrapped = first.wrap(b"e" * 32, b"a")
    assert version == v2
    assert second.unwrap(version, wrapped, b"a") == b"e" * 32  # reloads on an unknown version
    assert second.active_version() == v2


def test_index_keys_are_stable_per_label_and_independent_of_keks(tmp_path: Path) -> None:
    provider = make(tmp_path)
    before = provider.index_key("email")
    provider.create_version()
    assert provider.index_key("email") == before
    assert provider.index_key("national_id") != before
    assert LocalKeyProvider(provider.path, SECRET).index_key("email") == before
    assert make(tmp_path / "other").index_key("email") != before


def test_in_memory_provider_behaves_like_the_keyring() -> None:
    provider = InMemoryKeyProvider()
    v1, wrapped = provider.wrap(b"f" * 32, b"a")
    provider.create_version()
    assert provider.unwrap(v1, wrapped, b"a") == b"f" * 32
    provider.retire_version(v1)
    with pytest.raises(UnknownKeyVersion):
        provider.unwrap(v1, wrapped, b"a")
