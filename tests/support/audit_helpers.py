"""Helpers for the audit log tests: vaults on both backends, a populated log, and a database-level
attacker who removes the append-only triggers and rewrites rows directly.

Every value written here is invented (example agencies, "Testworth" family names).
"""

from __future__ import annotations

import sqlite3
import traceback
import uuid
from collections.abc import Sequence
from contextlib import closing
from multiprocessing.queues import Queue
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.sql.schema import Table

from tests.support.pg import PgServer
from vault.audit import chain
from vault.audit.log import Actor, Event
from vault.audit.tables import audit_events
from vault.runtime import Vault, open_vault
from vault.settings import Settings

# PostgreSQL parameters carry the marker declared in pyproject.toml (`-m "not postgres"` deselects them).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
CHECKPOINT_EVERY = 7
CLERK = Actor("clerk-0042", "clerk", "tax-office", request_id="req-test-0001")

SQLITE_GUARDS = (
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
)
PG_GUARDS = (
    "audit_events_append_only",
    "audit_events_no_truncate",
    "audit_checkpoints_append_only",
    "audit_checkpoints_no_truncate",
)


def backend_settings(request: pytest.FixtureRequest, data_dir: Path, backend: str) -> Settings:
    """Settings for a fresh vault on ``backend`` (PostgreSQL: two new databases on the session server).
    Checkpoints come every CHECKPOINT_EVERY events, never by time (deterministic counts)."""
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "keyring_scrypt_n": 2**10,
        "audit_checkpoint_every": CHECKPOINT_EVERY,
        "audit_checkpoint_seconds": 24 * 3600,
    }
    if backend == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        options |= {"database_url": server.new_database(), "keystore_url": server.new_database()}
    return Settings(**options)


def clone_data_store(settings: Settings, request: pytest.FixtureRequest, target: Path) -> Settings:
    """Settings for an exact copy of the data store (same keys, same key store). No connection to the
    source may be open (PostgreSQL copies a database by using it as a template)."""
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        target.mkdir(parents=True, exist_ok=True)
        with (
            closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as source,
            closing(sqlite3.connect(target / "vault.db")) as dest,
        ):
            source.backup(dest)
        return settings.model_copy(update={"database_url": f"sqlite:///{target / 'vault.db'}"})
    server: PgServer = request.getfixturevalue("pg_server")
    name = "c_" + uuid.uuid4().hex[:12]
    with server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')  # generated names only
    return settings.model_copy(update={"database_url": server.url(name)})


def populate(vault: Vault) -> list[uuid.UUID]:
    """32 events from real operations: creates, reads, look-ups, a multi-event record, partial reads."""
    profiles = vault.profiles
    ids = [
        profiles.create(
            {"given_name": f"Nimbo{i}", "family_name": "Testworth", "email": f"nimbo{i}@example.org"}, "civil-registry"
        )
        for i in range(8)
    ]
    for citizen in ids:
        profiles.read(citizen, actor=CLERK)
    for i, citizen in enumerate(ids[:6]):
        assert profiles.lookup("email", f"nimbo{i}@example.org", actor=CLERK) == [citizen]
    denied = [Event("citizens.read", "denied", citizen_id=c, fields=["income"], reason="no-grant") for c in ids[:3]]
    vault.audit.record(CLERK, *denied)
    for citizen in ids[:7]:
        profiles.read(citizen, ["given_name"], actor=CLERK, purpose="tax-assessment")
    assert event_count(vault.data_engine) == 32
    return ids


def count_rows(engine: Engine, table: Table) -> int:
    """Rows in ``table``."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def event_count(engine: Engine) -> int:
    """Rows in audit_events."""
    return count_rows(engine, audit_events)


def seqs(engine: Engine) -> list[int]:
    """Every stored sequence number, ascending."""
    with engine.connect() as conn:
        return [int(s) for s in conn.scalars(select(audit_events.c.seq).order_by(audit_events.c.seq))]


# -- the database-level attacker ------------------------------------------------------------------
def drop_guards(engine: Engine) -> None:
    """Remove the append-only triggers, as someone with the database's owner rights can."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = set(conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").scalars())
            assert set(PG_GUARDS) <= names, names
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.exec_driver_sql("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        else:
            names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
            assert set(SQLITE_GUARDS) <= names, names
            for name in SQLITE_GUARDS:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")


def load_events(engine: Engine) -> list[dict[str, Any]]:
    """Every event row (all columns), by seq; hashes as bytes."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq))]
    for row in rows:
        row["prev_hash"], row["hash"] = bytes(row["prev_hash"]), bytes(row["hash"])
    return rows


def replace_events(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the whole event table with ``rows`` (guards must be dropped first)."""
    with engine.begin() as conn:
        conn.execute(delete(audit_events))
        if rows:
            conn.execute(insert(audit_events), [dict(r) for r in rows])


def values_of(row: dict[str, Any]) -> list[Any]:
    """The hashed columns of a row, in canonical order."""
    return [row[name] for name in chain.EVENT_COLUMNS]


def rechain(rows: list[dict[str, Any]], start: int) -> None:
    """Recompute prev_hash and hash of rows[start:] so the chain is internally consistent again."""
    prev = chain.GENESIS if start == 0 else rows[start - 1]["hash"]
    for row in rows[start:]:
        row["prev_hash"] = prev
        row["hash"] = prev = chain.link(prev, values_of(row))


def forged_event(seq: int, prev: bytes, ts: str) -> dict[str, Any]:
    """A plausible event the vault never wrote, correctly linked after ``prev``."""
    row: dict[str, Any] = dict.fromkeys(chain.EVENT_COLUMNS)
    row |= {
        "seq": seq,
        "ts": ts,
        "actor": "forger-0666",
        "role": "operator",
        "agency": "vault",
        "action": "citizens.read",
        "fields": '["given_name"]',
        "outcome": "allowed",
        "prev_hash": prev,
    }
    row["hash"] = chain.link(prev, values_of(row))
    return row


# -- concurrency ----------------------------------------------------------------------------------
def append_worker(
    settings: Settings, citizen: uuid.UUID, worker: int, count: int, barrier: Barrier, results: Queue[Any]
) -> None:
    """Child process: open the vault, wait for the others, then append ``count`` events, alternating
    AuditLog.record and an audited profile read. Reports (worker, recorded seqs, error or None)."""
    recorded: list[int] = []
    try:
        vault = open_vault(settings)
        actor = Actor(f"worker-{worker}", "clerk", "tax-office")
        barrier.wait(timeout=120)
        for i in range(count):
            if i % 2 == 0:
                recorded += vault.audit.record(actor, Event("test.ping", citizen_id=citizen, reason=f"n{i}"))
            else:
                assert vault.profiles.read(citizen, ["given_name"], actor=actor).values
        vault.close()
        results.put((worker, recorded, None))
    except BaseException:
        results.put((worker, recorded, traceback.format_exc()))
