"""Engine construction shared by the key store and the data store (SQLite pragmas, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert
from sqlalchemy.engine import make_url


def make_engine(url: str, *, secure_delete: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and (optionally) secure_delete.

    ``secure_delete`` overwrites deleted content with zeros, so a destroyed data key does not
    linger in free pages of the key store.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # 64 MiB page cache: blind-index inserts land on random pages (HMAC keys).
        cur.execute("PRAGMA cache_size=-65536")
        if secure_delete:
            cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    return engine


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded SQLite backend."""
    return engine.dialect.name == "sqlite"


def checkpoint(engine: Engine) -> None:
    """Fold SQLite's WAL into the main file and truncate it (no-op on PostgreSQL)."""
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """executemany an INSERT of ``rows``, with SQLAlchemy's own type conversions but without its
    per-row statement bookkeeping, which cost more than SQLite itself on bulk imports.

    Values are converted by each column type's bind processor for this dialect; equal datetimes
    (one timestamp for a whole batch) are converted once.
    """
    if not rows:
        return
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect)
    names = [p for p in compiled.positiontup or []] if compiled.positional else [c.name for c in table.columns]
    procs = [table.columns[n].type._cached_bind_processor(dialect) for n in names]
    memo: dict[Any, Any] = {}

    def convert(proc: Any, value: Any) -> Any:
        if proc is None or value is None:
            return value
        if isinstance(value, datetime):
            if value not in memo:
                memo[value] = proc(value)
            return memo[value]
        return proc(value)

    pairs = list(zip(names, procs, strict=True))
    if compiled.positional:
        params: list[Any] = [tuple([convert(p, row[n]) for n, p in pairs]) for row in rows]
    else:
        params = [{n: convert(p, row[n]) for n, p in pairs} for row in rows]
    conn.exec_driver_sql(str(compiled), params)
