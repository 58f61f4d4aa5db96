"""Helpers for the importer, crash-resume and CLI tests: small vaults, input files, store counts.

Every value written here is invented (vault.demo profiles, example.org addresses, +999 numbers).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from keys.dekstore import DekRef, DekStore
from vault.catalogue import Value
from vault.fieldcipher import read_header
from vault.importer import LineError
from vault.models import blind_index, citizens
from vault.profiles import records
from vault.runtime import Vault, init_vault
from vault.settings import Settings

FAST_SCRYPT_N = 2**12


def make_vault(data_dir: Path) -> Vault:
    """A fresh SQLite vault with a cheap keyring KDF (tests only)."""
    return init_vault(Settings(data_dir=data_dir, keyring_scrypt_n=FAST_SCRYPT_N))


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write raw text lines (each given without its newline)."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def jsonl(profiles: Iterable[Mapping[str, Any]]) -> list[str]:
    """Profiles as JSON Lines."""
    return [json.dumps(dict(p)) for p in profiles]


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    """A CSV file with a header and raw rows (rows may have the wrong number of columns on purpose)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
    return path


def csv_row(profile: Mapping[str, Any], header: list[str]) -> list[str]:
    """One profile as CSV cells in header order."""
    return [str(profile[name]) for name in header]


def query_int(db: Path, sql: str) -> int:
    """One integer from an SQLite file through a read-only connection (safe while another process writes)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(sql).fetchone()
        if row is None:
            raise LookupError("no row")
        return int(row[0])
    finally:
        conn.close()


def count_rows(db: Path, table: str, where: str = "") -> int:
    """Count rows of an SQLite table (read-only)."""
    return query_int(db, f"SELECT count(*) FROM {table} {where}")


def data_key_count(store: DekStore) -> int:
    """How many data keys the key store holds, all KEK versions together."""
    return sum(store.count_by_kek_version().values())


def problem_text(errors: Iterable[LineError]) -> str:
    """Every field name and reason of every rejected line, as one string (to look for leaked values)."""
    return "\n".join(f"{e.line} {k} {v}" for e in errors for k, v in e.problems.items())


class _PrefetchedKeys(DekStore):
    """A DekStore stand-in answering get_many from keys unwrapped beforehand (bulk verification).

    A missing key raises KeyError, which records.open_sealed turns into CannotDecrypt like the real one.
    """

    def __init__(self, keys: Mapping[DekRef, bytes]) -> None:
        self._keys = keys

    def get_many(self, refs: Iterable[DekRef]) -> dict[DekRef, bytes]:
        return {r: self._keys[r] for r in refs}


def decrypt_all(vault: Vault) -> dict[uuid.UUID, dict[str, Value]]:
    """Every citizen's values, decrypted with the data keys the key store really holds, unwrapped
    through the real KEK provider (in chunks), then opened like ProfileService.read opens them.
    Much faster than one read per citizen; raises CannotDecrypt if any citizen is unreadable."""
    with vault.data_engine.connect() as conn:
        rows = conn.execute(select(citizens.c.id, citizens.c.record)).all()
    refs: set[DekRef] = set()
    sealed: dict[uuid.UUID, dict[str, bytes]] = {}
    for cid, record in rows:
        fields = records.unpack(cid, record)
        sealed[cid] = fields
        refs.update(DekRef(cid, h.slot, h.dek_version) for h in map(read_header, fields.values()))
    keys = vault.dekstore.get_many(refs)
    store = _PrefetchedKeys(keys)
    return {cid: records.open_sealed(vault.catalogue, store, cid, fields) for cid, fields in sealed.items()}


def national_id_hits(vault: Vault, national_ids: Iterable[str]) -> Counter[str]:
    """How many index entries each national id has (0, 1, ...), in a few queries."""
    by_digest = {vault.profiles.indexer.digest("national_id", n): n for n in national_ids}
    hits: Counter[str] = Counter(dict.fromkeys(by_digest.values(), 0))
    with vault.data_engine.connect() as conn:
        for digest in conn.scalars(select(blind_index.c.digest).where(blind_index.c.field == "national_id")):
            if digest in by_digest:
                hits[by_digest[digest]] += 1
    return hits
