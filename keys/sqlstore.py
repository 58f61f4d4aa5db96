"""Engine construction shared by the key store and the data store (SQLite pragmas, PostgreSQL)."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import uuid
import weakref
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from keys.rowcodec import RowCodec

log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 30_000  # how long an SQLite writer waits for another process's lock
POOL_SIZE, POOL_OVERFLOW = 5, 10  # SQLite connections kept, and opened beyond those when busy


def connects_now(engine: Engine) -> bool:
    """Whether a connection of ``engine`` can be had without waiting for another thread to give one
    back (an embedded SQLite pool of at most POOL_SIZE + POOL_OVERFLOW). The event loop asks before
    it reads inline: waiting there would stall every request, so it hands the work to the
    threadpool instead. Other backends: False (their work never runs on the loop)."""
    pool = engine.pool
    if engine.dialect.name != "sqlite" or not isinstance(pool, QueuePool):
        return False
    return pool.checkedin() > 0 or pool.checkedout() < POOL_SIZE + POOL_OVERFLOW


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite gives its -wal and -shm files
    the database file's mode), whatever the process umask; an existing file is left as it is."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def make_engine(url: str, *, secure_delete: bool = False, autocheckpoint: int = 1000) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and (optionally) secure_delete.

    ``secure_delete`` overwrites deleted content with zeros, so a destroyed data key does not
    linger in free pages of the key store. ``autocheckpoint``: WAL pages after which a committing
    writer folds the WAL into the database file itself (SQLite's default is 1,000); a process
    running a :class:`Checkpointer` raises it so that work (and its fsyncs) leaves the request path.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    pool: dict[str, Any] = {}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        _create_private(Path(parsed.database))
        pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    engine = create_engine(url, connect_args={"timeout": 30}, **pool)
    _GATES[engine] = _Gate(Path(f"{parsed.database}.writers") if pool else None)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # 64 MiB page cache: blind-index inserts land on random pages (HMAC keys).
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        if secure_delete:
            cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    return engine


class _Gate:
    """The writers' queue of one SQLite engine in this process.

    SQLite takes one writer at a time, and a writer that finds the database locked sleeps and polls
    (busy handler: sleeps of 1 to 100 ms) instead of queueing. Writers of one process queue here
    first, so the lock passes to the next writer as soon as it is free: under 32 concurrent grant
    reads this turned a p99 of seconds into the queue's own length. PostgreSQL queues row locks
    itself. A writer that will not wait never overtakes one that is waiting.

    Across processes (``serve --workers N``) the holder of the gate also holds an exclusive
    ``flock`` on ``<database>.writers``: writers of all processes queue in the kernel, woken as soon
    as the lock is released, instead of sleeping in SQLite's busy handler. The kernel drops the lock
    of a killed process.
    """

    def __init__(self, lock_file: Path | None = None) -> None:
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._waiting = 0
        self._lock_file = lock_file
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0  # nesting of the RLock's holder; only touched while holding it

    def _file_lock(self, blocking: bool) -> bool:
        """Take the cross-process lock (holding ``self._lock``); False if it would block."""
        if self._lock_file is None:
            return True
        if self._depth == 0:
            if self._fd is None or self._pid != os.getpid():  # never share a forked parent's lock
                self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        self._depth += 1
        return True

    def _file_unlock(self) -> None:
        if self._lock_file is None:
            return
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for the gate."""
        with self._count:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        try:
            self._file_lock(blocking=True)
        except BaseException:
            self._lock.release()
            raise
        try:
            yield
        finally:
            self._file_unlock()
            self._lock.release()

    def try_acquire(self) -> bool:
        """Take the gate if it is free and nobody is waiting for it (in any process)."""
        if self._waiting or not self._lock.acquire(blocking=False):
            return False
        if not self._file_lock(blocking=False):
            self._lock.release()
            return False
        return True

    def release(self) -> None:
        """Give back a gate taken by :meth:`try_acquire`."""
        self._file_unlock()
        self._lock.release()


_GATES: weakref.WeakKeyDictionary[Engine, _Gate] = weakref.WeakKeyDictionary()


class WouldWait(Exception):
    """A write transaction asked not to wait (``writing(..., wait=False)``) would have to: another
    writer holds the lock (or the backend is not the embedded SQLite). Nothing was done."""


@contextmanager
def writing(engine: Engine, *, wait: bool = True) -> Iterator[Connection]:
    """A write transaction (``engine.begin()``), queued behind this process's other writers on SQLite.

    ``wait=False`` (SQLite only) takes the write lock at once or raises :class:`WouldWait`: the
    HTTP layer runs short audited operations on its event loop that way, and in the threadpool
    when they would wait (another thread's transaction, or another process holding the database).
    """
    gate = _GATES.get(engine)
    if gate is None:
        if not wait:
            raise WouldWait
        with engine.begin() as conn:
            yield conn
        return
    if wait:
        with gate.held(), engine.begin() as conn:
            yield conn
        return
    if not gate.try_acquire():
        raise WouldWait
    try:
        with engine.begin() as conn:
            take_write_lock_now(conn)
            yield conn
    finally:
        gate.release()


def take_write_lock_now(conn: Connection) -> None:
    """BEGIN IMMEDIATE with SQLite's busy handler off: the write lock now, or WouldWait."""
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA busy_timeout=0")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise WouldWait from None
        raise
    finally:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class Checkpointer:
    """Folds an SQLite database's WAL into its main file from a background thread.

    Without it, the writer whose commit takes the WAL past ``wal_autocheckpoint`` pages copies the
    WAL into the database and fsyncs both, inside its own request: 10-15 µs per audit event on bulk
    grant reads, and the slowest single reads. A PASSIVE checkpoint never blocks readers or writers,
    and the sqlite3 module releases the GIL while it runs, so on a second core it costs requests
    nothing. The engine's own ``autocheckpoint`` stays as a backstop if this thread falls behind.
    """

    def __init__(self, engine: Engine, interval: float = 0.2) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (no-op for PostgreSQL or when running)."""
        if is_sqlite(self._engine) and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # a failed pass is retried; the engine's autocheckpoint is the backstop
                log.warning("background WAL checkpoint failed", exc_info=True)


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded SQLite backend."""
    return engine.dialect.name == "sqlite"


def checkpoint(engine: Engine) -> None:
    """Fold SQLite's WAL into the main file and truncate it (no-op on PostgreSQL)."""
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class RawUuids:
    """A ``Uuid`` column's values in the driver's own form, for bulk reads that skip SQLAlchemy's
    per-value conversions (``text()`` statements): ids travel as their 16 raw bytes.

    SQLAlchemy stores ``Uuid`` as 32 lowercase hex characters on SQLite and as the native ``uuid``
    type on PostgreSQL, where the driver (psycopg) takes and returns ``uuid.UUID`` objects.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.native = dialect.name != "sqlite"

    def param(self, raw: bytes) -> Any:
        """Driver parameter for an id."""
        return uuid.UUID(bytes=raw) if self.native else raw.hex()

    def value(self, stored: Any) -> bytes:
        """An id as returned by the driver, as raw bytes."""
        return bytes(stored.bytes) if self.native else bytes.fromhex(stored)


def _run(conn: Connection, sql: str, args: Any, many: bool = False) -> tuple[list[str] | None, list[Any]]:
    """Execute on the DBAPI cursor of ``conn`` (in its transaction): (column names or None, rows).
    A driver error is raised as SQLAlchemy's ``DBAPIError``, as ``Connection.execute`` would."""
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        if cursor.description is None:
            return None, []
        return [d[0] for d in cursor.description], cursor.fetchall()
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, None if many else args, exc, dbapi.Error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


def rows_in(conn: Connection, sql: str, values: Sequence[Any]) -> list[Any]:
    """Rows of ``sql``, whose one ``IN ({})`` takes ``values`` (driver forms: see RawUuids), run on the
    driver's cursor: the look-ups of bulk grant reads, where SQLAlchemy's expanding parameters cost
    more than the query."""
    if not values:
        return []
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return _run(conn, sql.format(", ".join([mark] * len(values))), list(values))[1]


class Prepared:
    """A Core statement compiled once per dialect and run on the caller's DBAPI cursor, in the
    caller's transaction: for the few statements every request runs (grant reads, audit appends,
    role checks), where SQLAlchemy's per-execution bookkeeping cost several times what SQLite took.

    Only for statements whose bound and returned columns need no type conversion (text, integers,
    bytes). Rows come back as tuples with attribute access by column name. Driver errors are raised
    as SQLAlchemy's ``DBAPIError``, exactly as from ``Connection.execute``.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._forms: dict[str, tuple[str, list[str] | None, dict[str, Any]]] = {}
        self._row_type: type[tuple[Any, ...]] | None = None

    def _form(self, dialect: Dialect) -> tuple[str, list[str] | None, dict[str, Any]]:
        form = self._forms.get(dialect.name)
        if form is None:
            compiled = self._statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            order = list(compiled.positiontup or []) if compiled.positional else None
            form = self._forms[dialect.name] = (str(compiled), order, dict(compiled.params))
        return form

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run with ``params`` (bind name -> value; literals in the statement are filled in)."""
        sql, order, defaults = self._form(conn.dialect)
        merged = defaults | dict(params)
        args: Any = [merged[n] for n in order] if order is not None else merged
        names, raw = _run(conn, sql, args)
        if names is None:
            return []
        if self._row_type is None:
            self._row_type = namedtuple("Row", names)  # type: ignore[misc]
        make = self._row_type._make  # type: ignore[attr-defined]
        return [make(r) for r in raw]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        found = self.rows(conn, params)
        return found[0] if found else None

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (column name -> value, every column given) with :class:`keys.rowcodec.RowCodec`:
    SQLAlchemy's own type conversions, without its per-row statement bookkeeping."""
    if not rows:
        return
    codec = RowCodec(table, conn.dialect)
    columns = [(name, codec.converter(name)) for name in codec.columns]
    codec.write(conn, [codec.row([None if (v := r[n]) is None else f(v) for n, f in columns]) for r in rows])
