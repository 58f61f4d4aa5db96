"""End to end with SoftHSM2: a vault whose KEKs live in the HSM (init, profiles, KEK rotation, wrong PIN)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from keys.pkcs11 import reinitialize
from tests.support.softhsm import SoftHsmToken
from vault.errors import ConfigurationError
from vault.runtime import init_vault, open_vault
from vault.settings import Settings

pytestmark = pytest.mark.softhsm

PERSON = {"given_name": "Ada", "family_name": "Example", "national_id": "123-456-789"}


def settings(tmp_path: Path, token: SoftHsmToken, pin: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        key_provider="pkcs11",
        pkcs11_module=token.module,
        pkcs11_token_label=token.label,
        pkcs11_pin=SecretStr(pin or token.pin),
    )


def test_vault_on_the_hsm(tmp_path: Path, softhsm_token: SoftHsmToken) -> None:
    vault = init_vault(settings(tmp_path, softhsm_token))
    try:
        assert vault.provider.name == "pkcs11"
        assert vault.warnings == []
        citizen = vault.profiles.create(PERSON, agency="registry")
        assert vault.profiles.read(citizen).values["family_name"] == "Example"
        assert vault.profiles.lookup("national_id", "123456789") == [citizen]  # blind index via HSM HMAC

        assert vault.provider.create_version() == 2
        step = vault.dekstore.rewrap_batch(100)
        assert (step.rewrapped, step.failed) == (1, 0)
        assert vault.dekstore.count_by_kek_version() == {2: 1}
        vault.provider.retire_version(1)
        assert vault.profiles.read(citizen, ["given_name"]).values == {"given_name": "Ada"}
    finally:
        vault.close()

    reopened = open_vault(settings(tmp_path, softhsm_token))
    try:
        assert reopened.provider.active_version() == 2
        assert reopened.profiles.read(citizen).values["given_name"] == "Ada"
        assert reopened.profiles.lookup("national_id", "123 456 789") == [citizen]
    finally:
        reopened.close()


def test_wrong_pin_is_a_configuration_error(tmp_path: Path, softhsm_token: SoftHsmToken) -> None:
    init_vault(settings(tmp_path, softhsm_token)).close()
    with pytest.raises(ConfigurationError, match="wrong PIN"):  # while this process is logged in
        open_vault(settings(tmp_path, softhsm_token, pin="0000"))
    reinitialize(softhsm_token.module)  # logged out: now the token itself rejects the PIN
    with pytest.raises(ConfigurationError, match="wrong PIN"):
        open_vault(settings(tmp_path, softhsm_token, pin="0000"))


def test_open_before_init_is_a_configuration_error(tmp_path: Path, softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(ConfigurationError, match="citizen-vault init"):
        open_vault(settings(tmp_path, softhsm_token))
