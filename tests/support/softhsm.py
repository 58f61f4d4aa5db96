"""SoftHSM2 for tests: a fresh, throw-away token in a temporary directory.

SoftHSM reads its configuration (SOFTHSM2_CONF, the token directory) once, at C_Initialize, and a
process loads a PKCS#11 module only once. So making a token also points this process at the new
configuration and re-initialises the already-loaded module; providers opened before are dead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_UTIL = "softhsm2-util"


@dataclass(frozen=True)
class SoftHsmToken:
    """One initialised token: where its module and configuration are, and its credentials."""

    module: Path
    conf: Path
    label: str
    pin: str
    so_pin: str


def unavailable_reason() -> str | None:
    """Why SoftHSM2 cannot be used here, or None when it can."""
    if shutil.which(SOFTHSM_UTIL) is None:
        return f"{SOFTHSM_UTIL} not found on PATH (Debian/Ubuntu: apt-get install softhsm2)"
    if not SOFTHSM_MODULE.exists():
        return f"SoftHSM2 PKCS#11 module not found at {SOFTHSM_MODULE} (apt-get install softhsm2)"
    return None


def require_softhsm() -> None:
    """Skip the test without SoftHSM2, except on CI (CI=true), where a missing HSM is a failure."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SoftHSM2 is required on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def make_token(directory: Path, label: str | None = None, pin: str = "1234", so_pin: str = "5678") -> SoftHsmToken:
    """Initialise a new token whose files live under ``directory``; writes ``directory/softhsm2.conf``.

    The caller must export SOFTHSM2_CONF=<returned conf> in this process (see the conftest
    fixture, which uses monkeypatch so it is restored) before opening the token.
    """
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    label = label or f"cv-test-{uuid.uuid4().hex[:12]}"
    # S603: fixed executable, arguments are ours.
    subprocess.run(
        [SOFTHSM_UTIL, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )
    return SoftHsmToken(SOFTHSM_MODULE, conf, label, pin, so_pin)
