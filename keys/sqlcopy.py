"""Copy tables between two databases through SQLAlchemy (backups of PostgreSQL stores, restores into
them): typed by the table definitions, so a UUID stays a UUID whichever side stores it as text."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, insert, select

BATCH = 5000


def copy_tables(source: Connection, target: Connection, tables: Iterable[Table]) -> dict[str, int]:
    """Copy every row of ``tables`` (parents first) from ``source`` to ``target``, in the callers'
    transactions; returns rows copied per table. The target tables must exist and be empty."""
    copied: dict[str, int] = {}
    for table in tables:
        count = 0
        rows = source.execution_options(yield_per=BATCH).execute(select(table))
        for part in rows.partitions(BATCH):
            target.execute(insert(table), [dict(r._mapping) for r in part])
            count += len(part)
        copied[table.name] = count
    return copied


def snapshot(conn: Connection) -> Connection:
    """Make ``conn`` read one consistent snapshot for the rest of its transaction (PostgreSQL's
    REPEATABLE READ, read only); SQLite already reads one snapshot per transaction."""
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn
