"""`citizen-vault demo` says where to sign in and as whom; `serve --demo` refuses production."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server_proc import CLI, clean_env
from vault import demo


def test_demo_prints_the_sign_in_address_and_each_demo_person(tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "--data-dir", str(tmp_path / "data"), "demo", "--citizens", "3"],
        env=clean_env(CITIZEN_VAULT_ISSUER="http://127.0.0.1:8123"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Open http://127.0.0.1:8123/login in a browser" in result.stdout
    first = demo.profile(0)
    assert f"{first['given_name']} {first['family_name']} (Citizen)" in result.stdout
    assert "Caseworker, Benefits Office (Caseworker)" in result.stdout
    assert "Compliance officer, Vault operator" in result.stdout
    assert "demo --curl" in result.stdout and "curl -s" not in result.stdout


def test_serve_with_demo_sign_in_refuses_to_start_in_production(tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "--data-dir", str(tmp_path / "data"), "serve", "--demo", "--port", "1"],
        env=clean_env(CITIZEN_VAULT_ENVIRONMENT="production"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "development only" in result.stderr and "Traceback" not in result.stderr
