"""Crash and resume through the real command line: SIGKILL an import or a KEK rotation part-way
through, re-run the same command, and check that nothing was lost, duplicated or orphaned.

The kill must land while work is committed but unfinished. If a run finishes before the poller
sees that window, the attempt is repeated on a fresh setup; if no attempt lands, the test fails
(it never passes without having crashed something).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.importer_helpers import (
    FAST_SCRYPT_N,
    count_rows,
    data_key_count,
    decrypt_all,
    make_vault,
    national_id_hits,
    query_int,
)
from vault import demo, operations
from vault.importer import Importer
from vault.runtime import Vault, open_vault
from vault.settings import Settings

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).parent / "citizen-vault"
ATTEMPTS = 4
POLL_SECONDS = 0.002
IMPORT_CITIZENS = 30_000
IMPORT_BATCH = 500
ROTATE_CITIZENS = 20_000
ROTATE_BATCH = 200


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_KEYRING_SCRYPT_N"] = str(FAST_SCRYPT_N)
    return env


def _cli(data_dir: Path, *args: str) -> list[str]:
    return [str(CLI), "--data-dir", str(data_dir), *args]


def _run_to_completion(data_dir: Path, *args: str) -> str:
    proc = subprocess.run(_cli(data_dir, *args), capture_output=True, text=True, env=_env(), timeout=600, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    return proc.stdout + proc.stderr


def _kill_when(data_dir: Path, args: list[str], log: Path, ready: Callable[[], bool]) -> bool:
    """Start the command, SIGKILL it as soon as ``ready()``; False if it exited first."""
    with log.open("wb") as out:
        proc = subprocess.Popen(_cli(data_dir, *args), stdout=out, stderr=subprocess.STDOUT, env=_env())
        try:
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    hit = ready()
                except Exception:  # the table or file may not exist yet; sqlite may be mid-checkpoint
                    hit = False
                if hit:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return True
                time.sleep(POLL_SECONDS)
            assert proc.poll() is not None, "command neither finished nor reached the kill window"
            assert proc.returncode == 0, log.read_text(errors="replace")[-2000:]
            return False
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _open(data_dir: Path) -> Vault:
    return open_vault(Settings(data_dir=data_dir))


# -- import ---------------------------------------------------------------------------------


def test_import_killed_mid_run_resumes_without_loss_duplicates_or_orphans(tmp_path: Path) -> None:
    source = demo.write_jsonl(tmp_path / "citizens.jsonl", IMPORT_CITIZENS)
    args = ["import", str(source), "--batch-size", str(IMPORT_BATCH)]
    low, high = 2 * IMPORT_BATCH, IMPORT_CITIZENS - 4 * IMPORT_BATCH

    killed_at = None
    for attempt in range(ATTEMPTS):
        data_dir = tmp_path / f"vault-{attempt}"
        make_vault(data_dir).close()
        db = data_dir / "vault.db"

        def mid_run(db: Path = db) -> bool:
            done = count_rows(db, "import_runs", f"WHERE lines_done >= {low} AND lines_done <= {high}")
            return done == 1

        if _kill_when(data_dir, args, tmp_path / f"import-{attempt}.log", mid_run):
            killed_at = data_dir
            break
    assert killed_at is not None, f"no attempt out of {ATTEMPTS} was killed mid-import"
    data_dir = killed_at

    # The kill left a partial, consistent state: whole batches, each with its checkpoint.
    db = data_dir / "vault.db"
    assert count_rows(db, "import_runs", "WHERE status = 'running'") == 1
    lines_done = query_int(db, "SELECT lines_done FROM import_runs")
    citizens_before = count_rows(db, "citizens")
    assert citizens_before == lines_done
    assert 0 < citizens_before < IMPORT_CITIZENS
    assert citizens_before % IMPORT_BATCH == 0
    assert count_rows(data_dir / "keystore.db", "data_keys") in (citizens_before, citizens_before + IMPORT_BATCH)

    out = _run_to_completion(data_dir, *args)

    assert f"Resumed after line {citizens_before}" in out
    assert f"accepted: {IMPORT_CITIZENS}  rejected: 0" in out
    v = _open(data_dir)
    try:
        assert operations.count_citizens(v) == IMPORT_CITIZENS
        assert data_key_count(v.dekstore) == IMPORT_CITIZENS  # no orphan, no lost key
        people = [demo.profile(i) for i in range(IMPORT_CITIZENS)]
        hits = national_id_hits(v, (p["national_id"] for p in people))
        assert set(hits.values()) == {1}, {n: c for n, c in hits.items() if c != 1}
        values = decrypt_all(v)
        by_national_id = {str(vals["national_id"]): vals for vals in values.values()}
        assert len(by_national_id) == IMPORT_CITIZENS
        for p in people:
            assert by_national_id[p["national_id"]] == p
        # And through the public API: the batches around the kill, plus a random sample.
        rng = random.Random(7)
        sample = [*range(citizens_before - 5, citizens_before + IMPORT_BATCH + 5), *rng.sample(range(30_000), 200)]
        for i in sample:
            (cid,) = v.profiles.lookup("national_id", people[i]["national_id"])
            assert v.profiles.read(cid).values == people[i]
    finally:
        v.close()
    assert "nothing to do" in _run_to_completion(data_dir, *args)


# -- KEK rotation ---------------------------------------------------------------------------


def _seed(data_dir: Path, n: int) -> None:
    source = demo.write_jsonl(data_dir.parent / f"{data_dir.name}-seed.jsonl", n)
    v = make_vault(data_dir)
    try:
        result = Importer(v.profiles, batch_size=5000, workers=2).run(source, "civil-registry")
        assert (result.accepted, result.rejected) == (n, 0)
    finally:
        v.close()


def _versions(data_dir: Path) -> list[tuple[int, str]]:
    v = _open(data_dir)
    try:
        return [(i.version, i.state) for i in v.provider.versions()]
    finally:
        v.close()


def test_rotation_killed_mid_run_resumes_the_same_version(tmp_path: Path) -> None:
    data_dir = tmp_path / "vault"
    _seed(data_dir, ROTATE_CITIZENS)
    keystore = data_dir / "keystore.db"
    args = ["keys", "rotate", "--batch-size", str(ROTATE_BATCH)]

    killed = False
    for attempt in range(ATTEMPTS):
        # Each attempt that completes leaves a finished rotation behind; the next one creates
        # the following version, so the kill window is always about `target`.
        target = max(v for v, _ in _versions(data_dir)) + 1
        limit = ROTATE_CITIZENS - 5 * ROTATE_BATCH

        def mid_run(target: int = target, limit: int = limit) -> bool:
            moved = count_rows(keystore, "data_keys", f"WHERE kek_version = {target}")
            return 0 < moved <= limit

        if _kill_when(data_dir, args, tmp_path / f"rotate-{attempt}.log", mid_run):
            killed = True
            break
    assert killed, f"no attempt out of {ATTEMPTS} was killed mid-rotation"

    at_kill = _versions(data_dir)
    assert at_kill[-1] == (target, "active")
    moved = count_rows(keystore, "data_keys", f"WHERE kek_version = {target}")
    assert 0 < moved < ROTATE_CITIZENS
    _read_sample(data_dir, seed=13)  # half-rotated: old and new wraps both open

    out = _run_to_completion(data_dir, *args)

    assert f"resuming rotation to KEK version {target}" in out
    assert f"active KEK version {target}: re-wrapped {ROTATE_CITIZENS - moved} data keys" in out
    assert _versions(data_dir) == at_kill  # resumed: no further KEK version created
    v = _open(data_dir)
    try:
        assert v.dekstore.count_by_kek_version() == {target: ROTATE_CITIZENS}
        values = decrypt_all(v)
        assert len(values) == ROTATE_CITIZENS
        assert {str(vals["national_id"]) for vals in values.values()} == {
            demo.profile(i)["national_id"] for i in range(ROTATE_CITIZENS)
        }
    finally:
        v.close()
    _read_sample(data_dir, seed=11)

    # The old versions can now go, and the data stays readable.
    for version, state in at_kill[:-1]:
        if state != "retired":
            _run_to_completion(data_dir, "keys", "retire", str(version))
    _read_sample(data_dir, seed=17)


def _read_sample(data_dir: Path, seed: int, n: int = 300) -> None:
    """Look up and read ``n`` random seeded citizens through the public profile service."""
    v = _open(data_dir)
    try:
        for i in random.Random(seed).sample(range(ROTATE_CITIZENS), n):
            (cid,) = v.profiles.lookup("national_id", demo.profile(i)["national_id"])
            assert v.profiles.read(cid).values == demo.profile(i)
    finally:
        v.close()


def test_reads_during_rotation_never_fail(tmp_path: Path) -> None:
    data_dir = tmp_path / "vault"
    _seed(data_dir, ROTATE_CITIZENS)
    reader = _open(data_dir)
    ids = {
        i: reader.profiles.lookup("national_id", demo.profile(i)["national_id"])[0]
        for i in random.Random(3).sample(range(ROTATE_CITIZENS), 500)
    }
    stop = threading.Event()
    errors: list[str] = []
    reads = 0

    def read_loop() -> None:
        nonlocal reads
        rng = random.Random(5)
        choices = list(ids.items())
        while not stop.is_set():
            i, cid = rng.choice(choices)
            try:
                if reader.profiles.read(cid).values != demo.profile(i):
                    errors.append(f"wrong values for citizen {cid}")
            except Exception as exc:
                errors.append(type(exc).__name__)
            reads += 1

    thread = threading.Thread(target=read_loop, daemon=True)
    thread.start()
    keystore = data_dir / "keystore.db"
    try:
        proc = subprocess.Popen(
            _cli(data_dir, "keys", "rotate", "--batch-size", str(ROTATE_BATCH)),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        reads_at_start = reads
        mixed_seen = False
        while proc.poll() is None:
            try:
                moved = count_rows(keystore, "data_keys", "WHERE kek_version = 2")
            except Exception:
                moved = 0
            mixed_seen = mixed_seen or 0 < moved < ROTATE_CITIZENS
            time.sleep(0.01)
        stdout = proc.communicate(timeout=60)[0].decode()
        reads_during = reads - reads_at_start
        time.sleep(0.2)  # a few more reads once everything is under the new version
    finally:
        stop.set()
        thread.join(timeout=30)
        reader.close()

    assert proc.returncode == 0
    assert f"re-wrapped {ROTATE_CITIZENS} data keys" in stdout
    assert mixed_seen, "the rotation was never observed half-way: the reads did not overlap it"
    assert reads_during > 50
    assert errors == []
    v = _open(data_dir)
    try:
        assert v.dekstore.count_by_kek_version() == {2: ROTATE_CITIZENS}
        assert [(i.version, i.state) for i in v.provider.versions()] == [(1, "decrypt-only"), (2, "active")]
    finally:
        v.close()
