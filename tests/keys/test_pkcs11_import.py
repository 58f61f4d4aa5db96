"""Bulk import on a vault whose KEK lives in SoftHSM2: the forked import workers never wrap (the KEK
never leaves the HSM, and a PKCS#11 session does not survive fork); the parent process does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from keys.pkcs11 import Pkcs11KeyProvider
from tests.support.importer_helpers import data_key_count, jsonl, write_lines
from tests.support.softhsm import SoftHsmToken
from vault import demo, operations
from vault.importer import Importer
from vault.runtime import init_vault
from vault.settings import Settings

pytestmark = pytest.mark.softhsm


def test_import_on_the_hsm_wraps_every_key_in_the_parent_process(
    tmp_path: Path, softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = init_vault(
        Settings(
            data_dir=tmp_path / "data",
            key_provider="pkcs11",
            pkcs11_module=softhsm_token.module,
            pkcs11_token_label=softhsm_token.label,
            pkcs11_pin=SecretStr(softhsm_token.pin),
        )
    )
    wrapped_by: set[int] = set()
    real_wrap_many = Pkcs11KeyProvider.wrap_many

    def recording_wrap_many(self: Pkcs11KeyProvider, items: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, bytes]]:
        wrapped_by.add(os.getpid())
        return real_wrap_many(self, items)

    monkeypatch.setattr(Pkcs11KeyProvider, "wrap_many", recording_wrap_many)
    try:
        assert not vault.provider.wraps_in_forked_workers
        path = write_lines(tmp_path / "people.jsonl", jsonl(demo.profile(i) for i in range(40)))

        result = Importer(vault.profiles, batch_size=7, workers=2).run(path, "civil-registry")

        assert (result.accepted, result.rejected) == (40, 0)
        assert wrapped_by == {os.getpid()}
        assert operations.count_citizens(vault) == data_key_count(vault.dekstore) == 40
        for i in (0, 17, 39):
            (citizen,) = vault.profiles.lookup("national_id", demo.profile(i)["national_id"])
            assert vault.profiles.read(citizen).values == demo.profile(i)
    finally:
        vault.close()
