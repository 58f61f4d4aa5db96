"""Disk full during an import (issue 18): the import runs in a subprocess whose files may not grow
past a limit (RLIMIT_FSIZE: each write beyond it fails with EFBIG, as on a full disk, without
needing root for a tiny filesystem). It stops with one clear line, keeps only whole batches, and the
same command resumes to the end once the limit is gone. All data is fictitious (vault.demo)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from vault import demo
from vault.settings import Settings

CLI = Path(sys.executable).parent / "citizen-vault"
LIMIT = 1_500_000  # bytes any one file of the process may reach: the WAL hits it after ~1,000 profiles


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    return env | {"CITIZEN_VAULT_KEYRING_SCRYPT_N": "4096"}


def _limited() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_disk_full_during_import_is_a_clear_error_and_the_import_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "v"
    source = demo.write_jsonl(tmp_path / "people.jsonl", 3000)
    subprocess.run([str(CLI), "--data-dir", str(data_dir), "init"], env=_env(), check=True, capture_output=True)
    command = [str(CLI), "--data-dir", str(data_dir), "import", str(source), "--batch-size", "500", "--workers", "0"]

    full = subprocess.run(command, env=_env(), preexec_fn=_limited, capture_output=True, text=True, check=False)

    assert full.returncode == 2, (full.returncode, full.stderr[-2000:])
    said = " ".join(full.stderr.split())
    assert "import stopped: the disk is full or refuses writes" in said, said
    assert "re-run the same command" in said
    assert "Traceback" not in full.stderr + full.stdout
    db = Settings(data_dir=data_dir).resolved_database_url().removeprefix("sqlite:///")
    kept = _count(Path(db), "SELECT count(*) FROM citizens")
    assert kept % 500 == 0 and kept < 3000  # whole batches only
    assert _count(Path(db), "SELECT count(DISTINCT citizen_id) FROM blind_index") == kept

    resumed = subprocess.run(command, env=_env(), capture_output=True, text=True, check=False)

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _count(Path(db), "SELECT count(*) FROM citizens") == 3000
    assert _count(Path(db), "SELECT count(DISTINCT citizen_id) FROM blind_index") == 3000
    verified = subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), "audit", "verify"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
