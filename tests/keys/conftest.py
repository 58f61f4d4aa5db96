"""Fixtures for the key-layer tests: a fresh SoftHSM2 token per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keys.pkcs11 import Pkcs11KeyProvider, reinitialize
from tests.support.softhsm import SoftHsmToken, make_token, require_softhsm


@pytest.fixture
def softhsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    """A new, empty SoftHSM2 token; this process is pointed at it (SOFTHSM2_CONF, module re-initialised)."""
    require_softhsm()
    token = make_token(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    reinitialize(token.module)
    return token


@pytest.fixture
def hsm_provider(softhsm_token: SoftHsmToken) -> Iterator[Pkcs11KeyProvider]:
    """A Pkcs11KeyProvider on a fresh token, with KEK v1 and the index root created."""
    provider = Pkcs11KeyProvider(softhsm_token.module, softhsm_token.label, softhsm_token.pin, create=True)
    yield provider
    provider.close()
