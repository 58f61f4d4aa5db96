"""During an import the SQLite writer's connection, and the key store's connection while it inserts a
batch of data keys, keep their statement journals in memory (PRAGMA temp_store=MEMORY); each
connection goes back to the pool with its previous setting. Nothing else changes: the rows and what a
commit makes durable are the same (the import tests check the rows)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from keys.dekimport import DekRows, fresh_keys
from keys.rowcodec import memory_temp_store, restore_temp_store
from keys.sqlstore import make_engine
from tests.support.importer_helpers import data_key_count, make_vault
from vault.fieldcipher import SLOT_PROFILE
from vault.import_wal import ImportWriter
from vault.runtime import Vault


def _temp_store(dbapi_conn: Any) -> int:
    return int(dbapi_conn.execute("PRAGMA temp_store").fetchone()[0])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(f"sqlite:///{tmp_path}/x.db")
    yield e
    e.dispose()


def test_the_import_writer_keeps_journals_in_memory_and_restores_the_setting(engine: Engine) -> None:
    with ImportWriter(engine) as writer:
        with writer.transaction() as conn:
            raw = conn.connection.dbapi_connection
            assert _temp_store(raw) == 2
            conn.exec_driver_sql("CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)")
            conn.exec_driver_sql("INSERT INTO t VALUES (?, ?), (?, ?)", (1, b"x", 2, b"y"))
        with writer.transaction() as conn:
            assert conn.connection.dbapi_connection is raw
            assert _temp_store(raw) == 2
    assert _temp_store(raw) == 0  # back in the pool as it was
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2


def test_temp_store_helpers(engine: Engine) -> None:
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        conn.exec_driver_sql("PRAGMA temp_store=FILE")
        before = memory_temp_store(conn)
        assert (before, _temp_store(raw)) == (1, 2)
        restore_temp_store(conn, before)
        assert _temp_store(raw) == 1
        restore_temp_store(conn, None)  # not SQLite: nothing to undo
        assert _temp_store(raw) == 1
        conn.exec_driver_sql("PRAGMA temp_store=DEFAULT")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = make_vault(tmp_path / "vault")
    yield v
    v.close()


def test_data_keys_are_inserted_with_journals_in_memory_and_the_setting_restored(vault: Vault) -> None:
    deks = DekRows(vault.dekstore)
    owners = [uuid.uuid4() for _ in range(300)]
    rows = deks.wrap(list(zip(owners, fresh_keys(300), strict=True)), SLOT_PROFILE, 1)
    seen: list[tuple[str, int]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append((statement.partition(" (")[0][:40], _temp_store(conn.connection.dbapi_connection)))

    event.listen(vault.dekstore.engine, "before_cursor_execute", record)
    try:
        deks.insert(rows, SLOT_PROFILE, 1, datetime.now(UTC))
    finally:
        event.remove(vault.dekstore.engine, "before_cursor_execute", record)
    assert seen[:2] == [("PRAGMA temp_store", 0), ("PRAGMA temp_store=MEMORY", 0)]
    inserts = [mode for statement, mode in seen if statement.startswith("INSERT")]
    assert inserts and set(inserts) == {2}
    assert seen[-1] == ("PRAGMA temp_store=0", 2)
    assert data_key_count(vault.dekstore) == 300
    with vault.dekstore.engine.connect() as conn:  # every pooled connection is back at the default
        assert _temp_store(conn.connection.dbapi_connection) == 0
