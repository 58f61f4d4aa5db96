"""SQLite WAL checkpoints of the data store in a thread of their own while an import writes.

A checkpoint copies the pages committed to the write-ahead log into the database file and syncs
both files. By default SQLite runs it inside the commit that grows the log past 1,000 pages: for an
import that is every batch, and the writer, which every batch waits for, waits for the copy and the
two syncs too. During an import the writer's connection does not checkpoint; this thread does,
right after each commit (PASSIVE: it never blocks the writer or readers), while the writer stores
the next batch's keys and takes its rows from a worker. The writer starts its next transaction only
once that checkpoint is over, so the log holds at most about one batch, as before, and restarts
from its beginning.

The writer's connection also keeps its statement journals in memory during the import
(keys.rowcodec.memory_temp_store): each multi-row INSERT's journal would otherwise spill to a
temporary file.

Durability is unchanged: commits are what they were (WAL, synchronous=NORMAL); only who copies
committed pages into the database file, and when, changes. On PostgreSQL this is a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from keys.rowcodec import memory_temp_store, restore_temp_store
from keys.sqlstore import is_sqlite

log = logging.getLogger(__name__)


class ImportWriter:
    """The data-store transactions of one import run (a context manager)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._background = is_sqlite(engine)
        self._conn: Connection | None = None
        self._autocheckpoint = 1000
        self._temp_store: int | None = None
        self._todo = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._thread = threading.Thread(target=self._checkpoints, name="import-wal-checkpoints", daemon=True)

    def __enter__(self) -> ImportWriter:
        if self._background:
            self._conn = self.engine.connect()
            self._autocheckpoint = int(self._conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
            self._conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            self._temp_store = memory_temp_store(self._conn)  # statement journals in memory
            self._conn.commit()
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._background:
            return
        self._stop = True
        self._todo.set()
        self._thread.join()
        if self._conn is not None:
            try:
                self._conn.rollback()
                self._conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")
                restore_temp_store(self._conn, self._temp_store)
                self._conn.commit()
            finally:
                self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One batch's transaction (committed on leaving), then a checkpoint in the background."""
        if self._conn is None:
            with self.engine.begin() as conn:
                yield conn
            return
        self._idle.wait()  # the previous batch's checkpoint is over: the log restarts
        with self._conn.begin():
            yield self._conn
        self._idle.clear()
        self._todo.set()

    def _checkpoints(self) -> None:
        with self.engine.connect() as conn:
            while True:
                self._todo.wait()
                self._todo.clear()
                if self._stop:
                    break
                try:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").close()
                    conn.commit()
                except DBAPIError as exc:  # the next commit of anyone checkpoints instead
                    log.warning("background WAL checkpoint failed", extra={"cause": type(exc).__name__})
                finally:
                    self._idle.set()
        self._idle.set()
