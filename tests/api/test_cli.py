"""The `citizen-vault` command line: init, demo, import, keys, erase, export, backup, and its
refusals (missing keyring, master secret, production settings): exit code 2, one clear line,
no traceback. All data is fictitious."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from tests.support.importer_helpers import FAST_SCRYPT_N, jsonl, make_vault, write_lines
from vault import demo, operations
from vault.runtime import Vault, open_vault
from vault.settings import Settings

CLI = Path(sys.executable).parent / "citizen-vault"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# One invented citizen with values distinctive enough to grep for in files and output.
DISTINCTIVE = {
    "given_name": "Quintessa",
    "family_name": "Wobblethorpe",
    "date_of_birth": "1977-07-07",
    "national_id": "987-654-321",
    "email": "quintessa.wobblethorpe@example.org",
    "phone": "+999 555 7777",
    "address": "42 Gigglesworth Crescent, Nowhereville",
    "income": 31415,
    "health_notes": "Allergic to imaginary moonbeams.",
}
PLAINTEXT_MARKERS = ["Quintessa", "Wobblethorpe", "987-654-321", "Gigglesworth", "moonbeams", "31415"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No CITIZEN_VAULT_* settings leak in from the environment; a cheap keyring KDF; root logging
    restored afterwards (the CLI installs a handler on whatever stderr CliRunner provides)."""
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CITIZEN_VAULT_KEYRING_SCRYPT_N", str(FAST_SCRYPT_N))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args], env=env, input=stdin)


def ok(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run(data_dir, *args, env=env)
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


def refused(result: Result, *fragments: str) -> None:
    """Exit code 2 with one clean error line naming ``fragments``; no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def opened(data_dir: Path, secret: str | None = None) -> Vault:
    return open_vault(Settings(data_dir=data_dir, master_secret=secret))


def seeded(data_dir: Path, n: int = 5) -> list[uuid.UUID]:
    """A vault with ``n`` demo citizens plus the distinctive one (last in the list)."""
    v = make_vault(data_dir)
    try:
        ids = [v.profiles.create(demo.profile(i), "civil-registry") for i in range(n)]
        ids.append(v.profiles.create(DISTINCTIVE, "civil-registry"))
        return ids
    finally:
        v.close()


def seeded_after_init(d: Path) -> list[uuid.UUID]:
    v = opened(d)
    try:
        return [v.profiles.create(demo.profile(0), "civil-registry")]
    finally:
        v.close()


# -- init and demo --------------------------------------------------------------------------


def test_init_twice_is_safe(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    first = ok(d, "init")
    assert "Vault ready" in first.stdout
    assert "DEVELOPMENT MODE" in first.stderr
    keyring = (d / "keyring.json").read_bytes()
    signing = (d / "signing-keys.json").read_bytes()
    ids = seeded_after_init(d)

    second = ok(d, "init")

    assert "Vault ready" in second.stdout
    assert (d / "keyring.json").read_bytes() == keyring
    assert (d / "signing-keys.json").read_bytes() == signing
    assert stat.S_IMODE((d / "keyring.json").stat().st_mode) == 0o600
    v = opened(d)
    try:
        assert v.profiles.read(ids[0]).values == demo.profile(0)
    finally:
        v.close()


def test_demo_seeds_and_prints_a_lookup(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    result = ok(d, "demo", "--citizens", "20", "--curl")

    first = demo.profile(0)
    assert "Imported 20 fictitious citizens" in result.stdout
    assert f"national_id={first['national_id']}" in result.stdout
    v = opened(d)
    try:
        assert operations.count_citizens(v) == 20 + 1  # and the demo child of vault/representation/demo.py
        (citizen,) = v.profiles.lookup("national_id", first["national_id"])
        assert f"/v1/citizens/{citizen}" in result.stdout
        assert v.profiles.read(citizen).values == first
    finally:
        v.close()
    assert list(d.glob("demo-citizens-*")) == []  # the plaintext seed file is removed

    again = ok(d, "demo", "--citizens", "20")
    assert "Citizens were seeded earlier." in again.stdout


# -- import ---------------------------------------------------------------------------------


def test_import_reports_rejections_without_values_and_reruns_as_no_op(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ok(d, "init")
    lines = jsonl(demo.profile(i) for i in range(8))
    lines[3] = json.dumps({**demo.profile(3), "income": "Glimmerbucks-galore"})
    path = write_lines(tmp_path / "people.jsonl", lines)

    result = ok(d, "import", str(path), "--agency", "tax-office", "--batch-size", "3", "--workers", "0")

    assert "accepted: 7  rejected: 1" in result.stdout
    assert re.search(r"line 4: income: expected an integer", result.stdout)
    assert "Glimmerbucks" not in result.output
    again = ok(d, "import", str(path), "--agency", "tax-office")
    assert "was already imported for tax-office" in again.stdout
    assert "accepted: 7  rejected: 1" in again.stdout


def test_import_refuses_an_unknown_format(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ok(d, "init")
    path = write_lines(tmp_path / "people.txt", jsonl([demo.profile(1)]))
    refused(run(d, "import", str(path)), "unknown format")
    refused(run(d, "import", str(path), "--format", "xml"), "--format must be jsonl or csv")


# -- keys -----------------------------------------------------------------------------------


def _status_rows(output: str) -> dict[int, tuple[str, int]]:
    rows = {}
    for m in re.finditer(r"│\s*(\d+)\s*│\s*([a-z-]+)\s*│[^│]*│\s*(\d+)\s*│", output):
        rows[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return rows


def test_keys_status_lists_versions(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 4)

    result = ok(d, "keys", "status")

    assert "provider: local" in result.stdout
    assert _status_rows(result.stdout) == {1: ("active", 5)}


def test_keys_rotate_then_retire_the_old_version(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ids = seeded(d, 4)

    rotated = ok(d, "keys", "rotate", "--batch-size", "2")
    assert "active KEK version 2: re-wrapped 5 data keys" in rotated.stdout
    assert _status_rows(ok(d, "keys", "status").stdout) == {1: ("decrypt-only", 0), 2: ("active", 5)}

    retired = ok(d, "keys", "retire", "1")
    assert "KEK version 1 destroyed" in retired.stdout
    assert _status_rows(ok(d, "keys", "status").stdout) == {1: ("retired", 0), 2: ("active", 5)}

    refused(run(d, "keys", "retire", "2"), "active")
    refused(run(d, "keys", "retire", "1"), "not held")
    v = opened(d)
    try:
        assert [(i.version, i.state) for i in v.provider.versions()] == [(1, "retired"), (2, "active")]
        assert v.profiles.read(ids[-1]).values == DISTINCTIVE
    finally:
        v.close()


def test_keys_retire_of_the_active_version_says_so(tmp_path: Path) -> None:
    """With data keys under it, the active version must be refused as active, not with `rotate first`."""
    d = tmp_path / "vault"
    seeded(d, 2)

    result = run(d, "keys", "retire", "1")

    refused(result, "active KEK version")
    assert "keys rotate" not in result.stderr


def test_keys_retire_refused_while_data_keys_are_still_under_that_version(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ids = seeded(d, 3)
    v = opened(d)
    try:
        assert v.provider.create_version() == 2  # a new version, no re-wrapping
    finally:
        v.close()

    refused(run(d, "keys", "retire", "1"), "4 data keys still wrapped under version 1")

    status = ok(d, "keys", "status").stdout
    assert _status_rows(status) == {1: ("decrypt-only", 4), 2: ("active", 0)}
    assert "4 data keys are not under the active KEK yet" in status
    v = opened(d)
    try:
        assert [(i.version, i.state) for i in v.provider.versions()] == [(1, "decrypt-only"), (2, "active")]
        assert v.profiles.read(ids[0]).values == demo.profile(0)
    finally:
        v.close()


# -- erase ----------------------------------------------------------------------------------


def test_erase_prints_destroyed_and_kept_fields(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ids = seeded(d, 1)

    result = ok(d, "erase", str(ids[-1]))

    out = result.stdout
    assert "Destroyed fields: address, email, health_notes, income, national_id, phone" in out
    for name in ("given_name", "family_name", "date_of_birth"):
        assert re.search(rf"Kept {name}: Civil Registration Act \(fictitious\) s\. 12", out)
    for marker in PLAINTEXT_MARKERS:
        assert marker not in result.output
    again = ok(d, "erase", str(ids[-1]))
    assert "Already erased" in again.stdout
    v = opened(d)
    try:
        assert v.profiles.lookup("national_id", DISTINCTIVE["national_id"]) == []
        assert set(v.profiles.read(ids[-1]).values) == {"given_name", "family_name", "date_of_birth"}
    finally:
        v.close()


def test_erase_refuses_a_malformed_or_unknown_id_cleanly(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 1)
    refused(run(d, "erase", "not-a-uuid"), "not a citizen id")
    refused(run(d, "erase", str(uuid.uuid4())), "no such citizen")


def test_erase_not_a_uuid_through_the_installed_command(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    proc = subprocess.run(
        [str(CLI), "--data-dir", str(d), "erase", "not-a-uuid"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert "not a citizen id" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# -- export and backup ----------------------------------------------------------------------


def test_export_is_encrypted_by_default_and_plaintext_only_when_asked(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 3)
    sealed_file = tmp_path / "export.jsonl"
    plain_file = tmp_path / "export-plain.jsonl"

    ok(d, "export", str(sealed_file))
    result = ok(d, "export", str(plain_file), "--decrypted", "--yes")

    assert "Exported 4 citizens (PLAINTEXT)" in result.stdout
    sealed_text = sealed_file.read_text()
    plain_text = plain_file.read_text()
    for marker in PLAINTEXT_MARKERS:
        assert marker not in sealed_text
        assert marker in plain_text
    header, *lines = sealed_text.splitlines()
    assert json.loads(header)["encrypted"] is True
    assert len(lines) == 4
    assert all(set(json.loads(line)["fields"]) == set(DISTINCTIVE) for line in lines)
    assert json.loads(plain_text.splitlines()[0])["encrypted"] is False
    for path in (sealed_file, plain_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_export_over_an_existing_readable_file_makes_it_0600(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 1)
    target = tmp_path / "export.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)

    ok(d, "export", str(target), "--decrypted", "--yes")

    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "Quintessa" in target.read_text()


def test_plaintext_export_asks_first(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 1)
    target = tmp_path / "export.jsonl"

    result = run(d, "export", str(target), "--decrypted", stdin="n\n")

    assert result.exit_code == 1
    assert not target.exists()


def test_backup_creates_a_copy_of_the_data_store_without_data_keys(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    seeded(d, 3)
    target = tmp_path / "backup.db"

    result = ok(d, "backup", str(target))

    assert "no data keys inside" in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    conn = sqlite3.connect(target)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("SELECT count(*) FROM citizens").fetchone()[0] == 4
    finally:
        conn.close()
    assert "data_keys" not in tables
    assert "Quintessa" not in target.read_bytes().decode("latin-1")
    refused(run(d, "backup", str(target)), "already exists")


# -- refusals on open -----------------------------------------------------------------------


def test_no_keyring_asks_for_init(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()

    refused(run(d, "keys", "status"), "citizen-vault init")

    assert list(d.iterdir()) == []  # nothing half-created


def test_no_keyring_through_the_installed_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    proc = subprocess.run(
        [str(CLI), "--data-dir", str(tmp_path / "nowhere"), "keys", "status"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "citizen-vault init" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_master_secret_is_required_once_set_and_must_be_right(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    secret = "correct-horse-battery-staple-for-tests"
    init = ok(d, "init", env={"CITIZEN_VAULT_MASTER_SECRET": secret})
    assert "master secret" in init.stdout
    assert "DEVELOPMENT MODE" not in init.stderr

    refused(run(d, "keys", "status"), "protected")
    wrong = run(d, "keys", "status", env={"CITIZEN_VAULT_MASTER_SECRET": "not-the-secret"})
    refused(wrong, "wrong master secret")
    assert "not-the-secret" not in wrong.output

    good = ok(d, "keys", "status", env={"CITIZEN_VAULT_MASTER_SECRET": secret})
    assert secret not in good.output
    assert b"keks" not in (d / "keyring.json").read_bytes()  # sealed, not stored as is


def test_a_secret_given_to_an_unprotected_keyring_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "vault"
    ok(d, "init")
    refused(run(d, "keys", "status", env={"CITIZEN_VAULT_MASTER_SECRET": "surprise"}), "not protected")


def test_production_without_master_secret_is_refused_at_init(tmp_path: Path) -> None:
    d = tmp_path / "vault"

    refused(run(d, "init", env={"CITIZEN_VAULT_ENVIRONMENT": "production"}), "CITIZEN_VAULT_MASTER_SECRET")

    assert not (d / "keyring.json").exists()
    prod = {"CITIZEN_VAULT_ENVIRONMENT": "production", "CITIZEN_VAULT_MASTER_SECRET": "prod-secret-for-tests"}
    ok(d, "init", env=prod)
    refused(run(d, "keys", "status", env={"CITIZEN_VAULT_ENVIRONMENT": "production"}), "CITIZEN_VAULT_MASTER_SECRET")
