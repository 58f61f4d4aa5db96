"""Operator export at scale (issue 18): the one-pass export against the old query-per-citizen one.

The store is filled the fast way: a few real encrypted profiles, cloned at the SQL level under fresh
ids with random blind-index digests (the encrypted export copies bytes; it never decrypts). Usage:

    .venv/bin/python -m bench.bench_export                # 100,000 citizens (default)
    .venv/bin/python -m bench.bench_export --n 1000000    # the issue's figure (about a minute to fill)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from bench.common import machine, speed_probe
from tests.support.importer_helpers import make_vault
from vault import demo, operations
from vault.models import blind_index, citizens
from vault.runtime import Vault


def fill(vault: Vault, n: int, seed: int = 200) -> None:
    """``n`` citizens: ``seed`` real ones, the rest SQL-level clones of their records."""
    for i in range(seed):
        vault.profiles.create(demo.profile(i), "civil-registry")
    db = vault.settings.data_dir / "vault.db"
    conn = sqlite3.connect(db)
    try:
        templates = conn.execute("SELECT status, dek_version, record, provenance, created_at FROM citizens").fetchall()
        batch: list[tuple[object, ...]] = []
        index: list[tuple[object, ...]] = []
        for i in range(n - seed):
            cid = uuid.uuid4().hex
            batch.append((cid, *templates[i % seed][:4], templates[i % seed][4], templates[i % seed][4]))
            index.append(("national_id", os.urandom(32), b"", cid))
            index.append(("email", os.urandom(32), bytes.fromhex(cid), cid))
            if len(batch) == 50_000:
                _flush(conn, batch, index)
        _flush(conn, batch, index)
    finally:
        conn.close()


def _flush(conn: sqlite3.Connection, batch: list[tuple[object, ...]], index: list[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO citizens (id, status, dek_version, record, provenance, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        batch,
    )
    conn.executemany("INSERT INTO blind_index (field, digest, tiebreak, citizen_id) VALUES (?, ?, ?, ?)", index)
    conn.commit()
    batch.clear()
    index.clear()


def per_citizen_export(vault: Vault, limit: int) -> int:
    """The old shape, for comparison: one blind-index query per citizen (a full scan each)."""
    done = 0
    with vault.data_engine.connect() as conn:
        for cid in conn.scalars(select(citizens.c.id).order_by(citizens.c.id).limit(limit)):
            conn.execute(select(blind_index.c.field, blind_index.c.digest).where(blind_index.c.citizen_id == cid)).all()
            done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="citizens in the store")
    parser.add_argument("--old-sample", type=int, default=200, help="citizens the old per-citizen export reads")
    args = parser.parse_args()
    print(f"machine: {machine()}; speed probe {speed_probe():.1f} ms (lower is faster)")
    with tempfile.TemporaryDirectory() as tmp:
        vault = make_vault(Path(tmp) / "v")
        try:
            start = time.perf_counter()
            fill(vault, args.n)
            print(f"filled {args.n:,} citizens in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            result = operations.export(vault, Path(tmp) / "export.jsonl", decrypted=False)
            took = time.perf_counter() - start
            size = (Path(tmp) / "export.jsonl").stat().st_size
            print(
                f"one-pass export: {result.written:,} citizens in {took:.1f} s "
                f"({result.written / took:,.0f} citizens/s, {size / 2**20:,.0f} MiB)"
            )
            start = time.perf_counter()
            sample = per_citizen_export(vault, args.old_sample)
            old = (time.perf_counter() - start) / sample
            print(
                f"old per-citizen export: {old * 1000:.1f} ms per citizen at this size; "
                f"{old * args.n:,.0f} s projected for all {args.n:,} (grows with the square of the size)"
            )
        finally:
            vault.close()


if __name__ == "__main__":
    main()
