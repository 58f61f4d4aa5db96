"""`citizen-vault audit ...` through the installed command: verify names the first edited or missing
event, export is verifiable with the public key alone, CSV is escaped and private. All data is fictitious.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.audit.chain import EVENT_COLUMNS, link
from vault.audit.export import CSV_COLUMNS, EXPORT_FORMAT
from vault.audit.log import Actor, Event
from vault.runtime import open_vault
from vault.settings import Settings

CLI = Path(sys.executable).parent / "citizen-vault"
TESTER = Actor("tester@civil-registry", "registrar", "civil-registry", "req-cli-0001")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_") and k != "FORCE_COLOR"}
    return env | {"CITIZEN_VAULT_KEYRING_SCRYPT_N": "1024", "NO_COLOR": "1"}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo vault with 5 fictitious citizens, made once and copied by each test."""
    data = tmp_path_factory.mktemp("demo") / "data"
    made = cli(data, "demo", "--citizens", "5")
    assert made.returncode == 0, made.stderr
    return data


@pytest.fixture
def vault_dir(demo_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    copy = tmp_path / "data"
    shutil.copytree(demo_vault, copy)
    yield copy


def _sql(data_dir: Path, *statements: str) -> None:
    """A database-level attacker: bypasses the product and its append-only triggers."""
    conn = sqlite3.connect(data_dir / "vault.db")
    try:
        with conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        conn.close()


def _last_seq(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "vault.db")
    try:
        return int(conn.execute("SELECT max(seq) FROM audit_events").fetchone()[0])
    finally:
        conn.close()


def test_verify_says_intact_on_a_fresh_demo_vault(vault_dir: Path) -> None:
    result = cli(vault_dir, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "intact:" in result.stdout and "NOT INTACT" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_verify_names_the_first_edited_event(vault_dir: Path) -> None:
    _sql(vault_dir, "DROP TRIGGER audit_events_no_update", "UPDATE audit_events SET actor = 'nobody' WHERE seq = 4")
    for _ in range(2):  # the verification's own event does not hide the finding
        result = cli(vault_dir, "audit", "verify")
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "NOT INTACT" in result.stderr
        assert "first mismatch at event 4: edited" in result.stderr
        assert "Traceback" not in result.stderr


def test_verify_names_missing_events_when_the_tail_is_deleted(vault_dir: Path) -> None:
    last = _last_seq(vault_dir)
    _sql(vault_dir, "DROP TRIGGER audit_events_no_delete", f"DELETE FROM audit_events WHERE seq > {last - 2}")
    result = cli(vault_dir, "audit", "verify")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"first mismatch at event {last - 1}: missing" in result.stderr


def _flip(line: str, key: str) -> str:
    """Change one character of the value of ``key`` in one JSON line (it stays valid JSON)."""
    at = line.index(f'"{key}": "') + len(key) + 5
    return line[:at] + ("x" if line[at] != "x" else "y") + line[at + 1 :]


def test_an_export_verifies_with_the_public_key_alone_and_names_an_edited_line(vault_dir: Path) -> None:
    keys = cli(vault_dir, "audit", "public-key")
    assert keys.returncode == 0, keys.stderr
    (pinned,) = [line for line in keys.stdout.splitlines() if "=" in line]
    kid = pinned.partition("=")[0]
    out = vault_dir.parent / "audit.jsonl"

    exported = cli(vault_dir, "audit", "export", str(out))
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == EXPORT_FORMAT
    assert json.loads(lines[-1])["checkpoint"]["kid"] == kid
    events = [json.loads(line) for line in lines[1:-1]]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)) and len(events) >= 10

    good = cli(vault_dir, "audit", "verify", "--export", str(out), "--public-key", pinned)
    assert good.returncode == 0, (good.stdout, good.stderr)
    assert "intact:" in good.stdout

    tampered = vault_dir.parent / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:3], _flip(lines[3], "action"), *lines[4:]]) + "\n", encoding="utf-8")
    bad = cli(vault_dir, "audit", "verify", "--export", str(tampered), "--public-key", pinned)
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "first mismatch at event 3: edited" in bad.stderr

    # Pinning matters: the same file under a key the verifier does not trust is refused.
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    other = f"{kid}={base64.b64encode(stranger).decode()}"
    untrusted = cli(vault_dir, "audit", "verify", "--export", str(out), "--public-key", other)
    assert untrusted.returncode == 1 and "bad-checkpoint" in untrusted.stderr


def test_a_filtered_export_verifies_each_event(vault_dir: Path) -> None:
    out = vault_dir.parent / "creates.jsonl"
    exported = cli(vault_dir, "audit", "export", str(out), "--action", "citizens.create")
    assert exported.returncode == 0, exported.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["filter"] == {"action": "citizens.create"}
    events = [json.loads(line) for line in lines[1:-1]]
    # The demo's 5 citizens and its representation seed's child (vault/representation/demo.py).
    assert len(events) == 6 and {e["action"] for e in events} == {"citizens.create"}
    assert cli(vault_dir, "audit", "verify", "--export", str(out)).returncode == 0
    tampered = vault_dir.parent / "creates-tampered.jsonl"
    tampered.write_text("\n".join([*lines[:2], _flip(lines[2], "actor"), *lines[3:]]) + "\n", encoding="utf-8")
    bad = cli(vault_dir, "audit", "verify", "--export", str(tampered))
    assert bad.returncode == 1 and f"event {events[1]['seq']}: edited" in bad.stderr


def test_a_csv_export_has_a_header_escapes_line_breaks_and_formulas_and_is_private(vault_dir: Path) -> None:
    vault = open_vault(Settings(data_dir=vault_dir))
    try:
        vault.audit.record(TESTER, Event("test.action", reason="a\r\nb"), Event("test.formula", reason="=1+1"))
    finally:
        vault.close()
    out = vault_dir.parent / "audit.csv"
    out.write_text("old, world-readable content\n", encoding="utf-8")
    out.chmod(0o644)

    exported = cli(vault_dir, "audit", "export", str(out), "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = out.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert raw.count("\n") == raw.count("\r\n") == len(rows), "a line break inside a cell was not escaped"
    by_action = {row[CSV_COLUMNS.index("action")]: row for row in rows[1:]}
    reason = CSV_COLUMNS.index("reason")
    assert by_action["test.action"][reason] == "a\\r\\nb"
    assert by_action["test.formula"][reason] == "'=1+1"
    assert by_action["test.action"][CSV_COLUMNS.index("request_id")] == "req-cli-0001"
    assert "old, world-readable" not in raw


def test_a_doctored_unfiltered_export_does_not_pass_as_a_filtered_one(vault_dir: Path) -> None:
    """An attacker edits an event, recomputes its (unkeyed) SHA-256 link and writes a filter into the
    unsigned header: verification with the pinned key must still fail, since nothing signed says the
    export was filtered."""
    vault = open_vault(Settings(data_dir=vault_dir))
    try:
        pinned = [f"{kid}={key}" for kid, key in vault.audit.signer.public_keys_b64().items()]
    finally:
        vault.close()
    out = vault_dir.parent / "audit.jsonl"
    assert cli(vault_dir, "audit", "export", str(out)).returncode == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    header, event = json.loads(lines[0]), json.loads(lines[3])
    assert header["filter"] == {}
    event["action"] = "citizens.erase"
    values = [json.dumps(event[c], separators=(",", ":")) if c == "fields" else event[c] for c in EVENT_COLUMNS]
    event["hash"] = link(bytes.fromhex(event["prev_hash"]), values).hex()
    header["filter"] = {"action": "citizens.erase"}
    doctored = vault_dir.parent / "doctored.jsonl"
    doctored.write_text(
        "\n".join([json.dumps(header), *lines[1:3], json.dumps(event), *lines[4:]]) + "\n", encoding="utf-8"
    )
    result = cli(vault_dir, "audit", "verify", "--export", str(doctored), "--public-key", pinned[0])
    assert result.returncode == 1, (
        "PRODUCT BUG (vault/audit/export.py verify_export/_verify_filtered): the export header's `filter` is not "
        "signed, so an edited unfiltered export with a filter written into its header verifies as intact "
        f"under the pinned key; got exit {result.returncode}: {result.stdout.strip()}"
    )
