"""Backup and restore of the data store, SQLite or PostgreSQL (docs/operations.md).

A backup is always one SQLite file with the data store's schema: SQLite's online backup API for an
SQLite store, a logical copy inside one REPEATABLE READ snapshot for PostgreSQL (no pg_dump version
to match, and the same file restores into either backend). It never holds a data key.

Restore goes into an empty data store and keeps the *current* key store: citizens erased since the
backup have lost their data keys, so their restored ciphertext is unreadable; restore then also
makes them unfindable (blind-index entries, PII findings, live grants dropped, record emptied and
marked erased), rolls the audit anchor back to the restored log's newest checkpoint, and records
the restore in the audit log.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, delete, inspect, select

import vault
from keys.dekstore import DekStore
from keys.errors import KeyLayerError
from keys.sqlcopy import copy_tables, snapshot
from keys.sqlstore import make_engine
from vault import db
from vault.audit.log import Actor, Event, anchored
from vault.errors import CannotDecrypt, ConfigurationError
from vault.fieldcipher import read_header
from vault.grants import cascade
from vault.models import blind_index, citizens, metadata
from vault.pii.tables import pii_findings
from vault.profiles import records
from vault.runtime import Vault

PURGE_REASON = "restore: data key destroyed after the backup"


def data_tables() -> list[Table]:
    """Every table of the data store, parents first. Imports each vault module so that tables
    registered by any domain (vault.models.metadata) are included, not only those loaded so far."""
    for info in pkgutil.walk_packages(vault.__path__, "vault."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)
    return list(metadata.sorted_tables)


def backup_data(data_engine: Engine, destination: Path) -> dict[str, int]:
    """A consistent online copy of the data store into a new SQLite file (0600)."""
    if destination.exists():
        raise ConfigurationError(f"{destination} already exists")
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)
    if data_engine.dialect.name == "sqlite" and data_engine.url.database:
        source = sqlite3.connect(data_engine.url.database)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return {"citizens": _count(destination)}
    copy = make_engine(f"sqlite:///{destination}")
    try:
        db.upgrade(copy)  # the source is at head (open_vault checks), so is the copy
        with data_engine.connect() as conn, copy.begin() as dst:
            src = snapshot(conn)
            with src.begin():
                return copy_tables(src, dst, data_tables())
    finally:
        copy.dispose()


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM citizens").fetchone()[0])
    finally:
        conn.close()


def load_backup(backup: Path, data_url: str, workdir: Path) -> None:
    """Put the backup into the empty data store at ``data_url``, upgraded to the current schema:
    staged in a private copy first, so a failure leaves the target as it was (empty)."""
    target = make_engine(data_url)
    try:
        if inspect(target).get_table_names():
            raise ConfigurationError("the data store is not empty: restore into a fresh data directory or database")
        dialect, database = target.dialect.name, target.url.database
    finally:
        target.dispose()
    if dialect == "sqlite" and (not database or database == ":memory:"):
        raise ConfigurationError("an in-memory data store cannot be restored into")
    fd, name = tempfile.mkstemp(prefix=".restore-", suffix=".db", dir=workdir)
    os.close(fd)
    staged = Path(name)
    try:
        source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        copy = sqlite3.connect(staged)
        try:
            if source.execute("SELECT count(*) FROM sqlite_master WHERE name = 'citizens'").fetchone()[0] != 1:
                raise ConfigurationError(f"{backup} is not a data store backup")
            source.backup(copy)
        except sqlite3.DatabaseError:
            raise ConfigurationError(f"{backup} is not a data store backup") from None
        finally:
            copy.close()
            source.close()
        engine = make_engine(f"sqlite:///{staged}")
        try:
            db.upgrade(engine)  # a backup made by an older version meets the current schema
            if dialect != "sqlite":
                _copy_into(engine, data_url)
        finally:
            engine.dispose()
        if dialect == "sqlite" and database:
            os.replace(staged, database)
    finally:
        staged.unlink(missing_ok=True)


def _copy_into(source: Engine, data_url: str) -> None:
    target = db.data_engine(data_url)
    try:
        db.upgrade(target)
        with source.connect() as src, target.begin() as dst:  # all or nothing
            copy_tables(src, dst, data_tables())
    finally:
        target.dispose()


@dataclass(frozen=True)
class RestoreReport:
    """What restore did beyond copying: the citizens purged, the checkpoint the anchor now holds."""

    purged: list[uuid.UUID]
    anchored_at: int


def finish_restore(opened: Vault, actor: Actor, backup_name: str) -> RestoreReport:
    """After the data is in place: purge citizens whose keys are gone, re-anchor the audit log
    to what was restored, and record the restore (its own audited transaction)."""
    purged = purge_orphans(opened, actor)
    with opened.data_engine.connect() as conn:
        latest = opened.audit.latest_checkpoint(conn)
    if opened.audit.anchor is not None:
        opened.audit.anchor.reset(None if latest is None else anchored(latest))
    opened.audit.record(
        actor,
        Event("ops.restore", reason=f"restored {backup_name[:80]}; {len(purged)} citizens purged ({PURGE_REASON})"),
    )
    return RestoreReport(purged, 0 if latest is None else latest.count)


def purge_orphans(opened: Vault, actor: Actor, batch: int = 2000) -> list[uuid.UUID]:
    """Citizens (active in the restored data) whose records need a data key that no longer exists:
    make them unfindable and mark them erased, each with an audit event, in one transaction per batch."""
    purged: list[uuid.UUID] = []
    for part in _active_records(opened.data_engine, batch):
        gone = _missing_keys(opened.dekstore, part)
        if not gone:
            continue
        now = datetime.now(UTC)
        with opened.audit.transaction() as conn:
            for citizen in gone:
                _purge(conn, citizen, now)
            opened.audit.append(conn, actor, [Event("citizens.erase", citizen_id=c, reason=PURGE_REASON) for c in gone])
        purged += gone
    return purged


def _active_records(engine: Engine, batch: int) -> Iterator[list[tuple[uuid.UUID, bytes]]]:
    with engine.connect() as conn:
        query = select(citizens.c.id, citizens.c.record).where(citizens.c.status == "active").order_by(citizens.c.id)
        rows = conn.execution_options(yield_per=batch).execute(query)
        for part in rows.partitions(batch):
            yield [(cid, bytes(record)) for cid, record in part]


def _missing_keys(store: DekStore, part: list[tuple[uuid.UUID, bytes]]) -> list[uuid.UUID]:
    existing = store.existing_refs([c.bytes for c, _ in part])
    gone = []
    for citizen, record in part:
        try:
            blobs = records.unpack(citizen, record).values()
            needed = {(citizen.bytes, h.slot, h.dek_version) for h in map(read_header, blobs)}
        except (CannotDecrypt, KeyLayerError):
            needed = {(citizen.bytes, "?", -1)}  # unreadable anyway: purge what points at it
        if not needed <= existing:
            gone.append(citizen)
    return gone


def _purge(conn: Connection, citizen: uuid.UUID, now: datetime) -> None:
    conn.execute(delete(blind_index).where(blind_index.c.citizen_id == citizen))
    conn.execute(delete(pii_findings).where(pii_findings.c.citizen_id == citizen))
    cascade.revoke(conn, "citizen-erased", citizen_id=str(citizen))
    records.write_record(conn, citizen, {}, {}, status="erased", erased_at=now)
