"""SQLite plumbing shared by both stores: the in-process writer queue and background checkpoints."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from keys import sqlstore
from keys.sqlstore import Checkpointer, Prepared, make_engine, writing


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_checkpointer_folds_the_wal_without_the_writers(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{db}", autocheckpoint=1_000_000)  # writers never checkpoint
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
    with writing(engine) as conn:
        conn.execute(text("INSERT INTO t (body) VALUES (randomblob(4000))"))
        for _ in range(12):
            conn.execute(text("INSERT INTO t (body) SELECT randomblob(4000) FROM t"))  # 4,096 rows, ~16 MB
    # Until a checkpoint, the rows live in the WAL only: the database file stays small.
    assert db.stat().st_size < 1_000_000 < _wal_bytes(db)
    checkpointer = Checkpointer(engine, interval=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 60  # liveness bound only; how fast is for bench/
        while db.stat().st_size < 16_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size >= 16_000_000
    finally:
        checkpointer.stop()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 4096
    engine.dispose()


def test_writers_of_one_process_queue_and_all_commit(tmp_path: Path) -> None:
    """32 threads writing at once: every write commits (none waits out SQLite's busy timeout)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'y.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE c (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO c VALUES (0)"))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with writing(engine) as conn:
                    n = conn.execute(text("SELECT n FROM c")).scalar_one()
                    conn.execute(text("UPDATE c SET n = :n"), {"n": n + 1})  # read-modify-write: lost if not serial
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM c")).scalar() == 32 * 25
    engine.dispose()


def test_prepared_statements_run_on_the_driver_with_sqlalchemy_errors(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'z.db'}")
    meta = MetaData()
    items = Table(
        "items", meta, Column("id", Integer, primary_key=True), Column("kind", String(8)), Column("n", Integer)
    )
    meta.create_all(engine)
    add = Prepared(insert(items).values(id=bindparam("b_id"), kind="fixed", n=bindparam("b_n")))
    bump = Prepared(
        update(items)
        .where(items.c.id == bindparam("b_id"), items.c.kind == "fixed")
        .values(n=items.c.n + 1)
        .returning(items)
    )
    with writing(engine) as conn:
        assert add.rows(conn, {"b_id": 1, "b_n": 41}) == []
        row = bump.first(conn, {"b_id": 1})
        assert (row.id, row.kind, row.n) == (1, "fixed", 42) and row == (1, "fixed", 42)
        assert bump.first(conn, {"b_id": 2}) is None
        with pytest.raises(IntegrityError):  # the driver's error, raised as SQLAlchemy's
            add.rows(conn, {"b_id": 1, "b_n": 0})
    with engine.connect() as conn:
        assert Prepared(select(items.c.n).where(items.c.id == bindparam("b_id"))).scalar(conn, {"b_id": 1}) == 42
    engine.dispose()


def test_the_writers_gate_lets_no_one_barge_past_a_waiting_writer() -> None:
    gate = sqlstore._Gate()
    holding, release_holder, waiter_in, release_waiter = (threading.Event() for _ in range(4))

    def holder() -> None:
        with gate.held():
            holding.set()
            release_holder.wait()

    def waiter() -> None:
        with gate.held():
            waiter_in.set()
            release_waiter.wait()

    def try_from_another_thread() -> bool:
        got: list[bool] = []

        def attempt() -> None:
            got.append(gate.try_acquire())
            if got[0]:
                gate.release()

        t = threading.Thread(target=attempt)
        t.start()
        t.join()
        return got[0]

    h = threading.Thread(target=holder)
    h.start()
    holding.wait()
    w = threading.Thread(target=waiter)
    w.start()
    deadline = time.monotonic() + 30
    while gate._waiting != 1 and time.monotonic() < deadline:  # the waiter is queued
        time.sleep(0.01)
    assert gate._waiting == 1
    assert not try_from_another_thread()  # held, and someone is waiting
    release_holder.set()
    h.join()
    waiter_in.wait()
    assert not try_from_another_thread()  # the waiter got it, not the one that would not wait
    release_waiter.set()
    w.join()
    assert try_from_another_thread()  # free and nobody waiting


def test_connects_now_is_false_only_while_every_pooled_connection_is_out(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    try:
        assert sqlstore.connects_now(engine)
        held = [engine.connect() for _ in range(sqlstore.POOL_SIZE + sqlstore.POOL_OVERFLOW)]
        assert not sqlstore.connects_now(engine)  # the loop would wait: its work goes to the threadpool
        held.pop().close()
        assert sqlstore.connects_now(engine)
        for conn in held:
            conn.close()
    finally:
        engine.dispose()
    memory = make_engine("sqlite://")  # not a pool of its own: never on the loop
    assert not sqlstore.connects_now(memory)


def test_writer_gate_queues_across_processes(tmp_path: Path) -> None:
    """Two engines on one SQLite file stand for two worker processes: while one holds the writers'
    lock the other cannot take it without waiting, and can once it is released."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = sqlstore.make_engine(url), sqlstore.make_engine(url)
    try:
        with sqlstore.writing(first) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        # first holds the gate but not yet SQLite's own write lock: only the writers' file lock excludes
        with sqlstore.writing(first), pytest.raises(sqlstore.WouldWait), sqlstore.writing(second, wait=False):
            pass
        with sqlstore.writing(second, wait=False) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert (tmp_path / "shared.db.writers").exists()
    finally:
        first.dispose()
        second.dispose()
