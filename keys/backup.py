"""Key backups: the keyring files and the key store, sealed in one file under an operator's
passphrase (AES-256-GCM, key from Argon2id: memory-hard, so a stolen backup resists guessing).

A bundle holds the secret files of the data directory (the KEK keyring, the token and audit signing
keys: each still sealed under the master secret when one protects it) and every table of the key
store (wrapped data keys, the audit anchor). KEKs inside an HSM are not in it: the HSM has its own
backup (docs/operations.md). Restoring refuses to overwrite: it is for a fresh data directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect

from keys import aead, migrate, sealed
from keys.anchor import audit_anchor
from keys.dekstore import data_keys
from keys.errors import DecryptionFailed, KeyringError
from keys.sqlcopy import copy_tables, snapshot
from keys.sqlstore import make_engine

BUNDLE_FORMAT = "citizen-vault-keys-backup/1"
SECRET_FILES = ("keyring.json", "signing-keys.json", "audit-signing-keys.json")
KEY_TABLES = (data_keys, audit_anchor)
MIN_PASSPHRASE = 12


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost; the default is RFC 9106's second recommended option (64 MiB, 3 passes)."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4


def write_bundle(
    data_dir: Path, key_engine: Engine, destination: Path, passphrase: str, cost: Argon2Cost = Argon2Cost()
) -> dict[str, int]:
    """Seal the secret files and the key store into ``destination`` (0600, refuses to overwrite)."""
    _check_passphrase(passphrase)
    if destination.exists():
        raise KeyringError(f"{destination} already exists")
    files = {n: sealed.b64((data_dir / n).read_bytes()) for n in SECRET_FILES if (data_dir / n).exists()}
    with tempfile.TemporaryDirectory() as tmp:
        copy_file = Path(tmp) / "keystore.db"
        counts = _copy_store(key_engine, copy_file)
        store = sealed.b64(copy_file.read_bytes())
    inner = json.dumps({"files": files, "keystore": store}).encode()
    salt = os.urandom(16)
    key = aead.argon2id_key(passphrase.encode(), salt, cost.memory_kib, cost.iterations, cost.lanes)
    outer = {
        "format": BUNDLE_FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "kdf": {"name": "argon2id", "salt": sealed.b64(salt), **cost.__dict__},
        "sealed": sealed.b64(aead.Aead(key).seal(inner, BUNDLE_FORMAT.encode())),
    }
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(outer, fh)
    return counts


def restore_bundle(bundle: Path, passphrase: str, data_dir: Path, keystore_url: str) -> dict[str, int]:
    """Put the files and key store of ``bundle`` in place; refuses an existing keyring or a key store
    that already holds tables (restore into a fresh data directory / empty database)."""
    inner = _open(bundle, passphrase)
    present = [n for n in inner["files"] if (data_dir / n).exists()]
    if present:
        raise KeyringError(f"{data_dir / present[0]} already exists: restore keys into a fresh data directory")
    engine = make_engine(keystore_url, secure_delete=True)
    try:
        if inspect(engine).get_table_names():
            raise KeyringError("the key store is not empty: restore keys into a fresh key store")
        with tempfile.TemporaryDirectory() as tmp:
            copy_file = Path(tmp) / "keystore.db"
            copy_file.write_bytes(sealed.unb64(inner["keystore"]))
            source = make_engine(f"sqlite:///{copy_file}")
            try:
                migrate.upgrade_keystore(source)  # an older bundle meets the current schema
                migrate.upgrade_keystore(engine)
                with source.connect() as src, engine.begin() as dst:
                    counts = copy_tables(src, dst, KEY_TABLES)
            finally:
                source.dispose()
    finally:
        engine.dispose()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, blob in inner["files"].items():
        fd = os.open(data_dir / name, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sealed.unb64(blob))
            fh.flush()
            os.fsync(fh.fileno())
    return counts


def _open(bundle: Path, passphrase: str) -> dict[str, Any]:
    try:
        outer = json.loads(bundle.read_text(encoding="utf-8"))
        kdf = outer["kdf"]
        if outer.get("format") != BUNDLE_FORMAT or kdf.get("name") != "argon2id":
            raise KeyringError(f"{bundle} is not a {BUNDLE_FORMAT} file")
        salt = sealed.unb64(kdf["salt"])
        key = aead.argon2id_key(
            passphrase.encode(), salt, int(kdf["memory_kib"]), int(kdf["iterations"]), int(kdf["lanes"])
        )
        body = aead.Aead(key).open(sealed.unb64(outer["sealed"]), BUNDLE_FORMAT.encode())
    except DecryptionFailed:
        raise KeyringError("wrong passphrase (or the backup was altered)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyringError(f"{bundle} is not a readable key backup ({type(exc).__name__})") from None
    inner: dict[str, Any] = json.loads(body)
    return inner


def _copy_store(key_engine: Engine, destination: Path) -> dict[str, int]:
    """The key store as an SQLite file: SQLite's online backup, or a consistent logical copy."""
    if key_engine.dialect.name == "sqlite" and key_engine.url.database:
        source = sqlite3.connect(key_engine.url.database)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
            return {t.name: int(target.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]) for t in KEY_TABLES}  # noqa: S608 - fixed names
        finally:
            target.close()
            source.close()
    copy = make_engine(f"sqlite:///{destination}")
    try:
        migrate.upgrade_keystore(copy)
        with key_engine.connect() as conn, copy.begin() as dst:
            src = snapshot(conn)
            with src.begin():
                return copy_tables(src, dst, KEY_TABLES)
    finally:
        copy.dispose()


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyringError(f"the backup passphrase must have at least {MIN_PASSPHRASE} characters")
