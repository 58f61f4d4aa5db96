"""Engine construction shared by the key store and the data store (SQLite pragmas, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
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
