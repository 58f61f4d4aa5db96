"""Driver parameters for bulk INSERTs, built from column values without a dict per row.

:class:`keys.sqlstore.RowWriter` turns a dict per row into driver parameters. Bulk imports build
hundreds of thousands of rows in forked worker processes; there even that dict and the per-value
method calls showed in profiles. A :class:`RowCodec` hands out the per-column conversions once, so
a caller converts only the columns that need it (a batch's single timestamp once per batch) and
builds each row as a tuple in the table's column order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, LargeBinary, Table, insert
from sqlalchemy.engine import Dialect


def memory_temp_store(conn: Connection) -> int | None:
    """SQLite: keep the connection's temporary files in memory (``PRAGMA temp_store=MEMORY``) and
    return the previous setting, for :func:`restore_temp_store`; None (nothing done) elsewhere.
    Call it outside a transaction.

    For bulk inserts. A multi-row INSERT keeps a statement journal (the original of every page it
    changes, to undo just that statement if a constraint fails), which SQLite spills to a temporary
    file past 64 KiB: about 1.5 file writes per imported profile. In memory it is the same journal
    without the system calls. Only temporary data moves; the database files, their WAL and what a
    commit makes durable are unchanged."""
    if conn.dialect.name != "sqlite":
        return None
    before = int(conn.exec_driver_sql("PRAGMA temp_store").scalar_one())
    conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
    return before


def restore_temp_store(conn: Connection, before: int | None) -> None:
    """Undo :func:`memory_temp_store` (outside a transaction)."""
    if before is not None:
        conn.exec_driver_sql(f"PRAGMA temp_store={int(before)}")


def _identity(value: Any) -> Any:
    return value


def _blobs_as_bytearrays(rows: Sequence[Sequence[Any]], positions: Sequence[int]) -> Sequence[Sequence[Any]]:
    """``rows`` with the ``bytes`` values at ``positions`` (binary columns) as ``bytearray``s: the same
    BLOB for SQLite, bound without the sqlite3 module's adapter lookup, which it does for every
    ``bytes`` parameter (a registry lookup and two attribute lookups) but skips for the exact base
    types (``int``, ``float``, ``str``, ``bytearray``) while no adapter is registered for them. That
    lookup cost about half a microsecond per value, more than the copy. A column holding anything
    but ``bytes`` (``None``, ``str``, ...) is left as it is."""
    if not rows or not positions:
        return rows
    columns: list[Any] = list(zip(*rows, strict=True))
    changed = False
    for p in positions:
        if set(map(type, columns[p])) == {bytes}:
            columns[p] = map(bytearray, columns[p])
            changed = True
    return list(zip(*columns, strict=True)) if changed else rows


class RowCodec:
    """INSERT parameters for every column of one table, for one dialect."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.columns = [c.name for c in table.columns]
        self._position = {name: i for i, name in enumerate(self.columns)}
        if self.positional and list(compiled.positiontup or []) != self.columns:
            raise ValueError(f"{table.name}: INSERT parameters are not in column order")
        # SQLite: many rows per INSERT statement (fewer statement steps and resets per row; 999
        # variables fit any SQLite build). Other drivers get plain executemany.
        sqlite = dialect.name == "sqlite" and self.positional
        self.sqlite_multi = sqlite
        # SQLite: binary columns bound as bytearrays (_blobs_as_bytearrays).
        self.blob_positions = (
            [i for i, c in enumerate(table.columns) if isinstance(c.type, LargeBinary)] if sqlite else []
        )
        self._per_statement = max(1, min(100, 999 // len(self.columns))) if sqlite else 1
        if self._per_statement > 1:
            head, _, one = self.sql.partition(" VALUES ")
            self._multi_sql = head + " VALUES " + ",".join([one] * self._per_statement)
        self._procs: dict[str, Callable[[Any], Any] | None] = {
            # bytes go to both drivers as they are (SQLAlchemy would wrap them in memoryviews,
            # which cannot cross a process boundary)
            c.name: None if isinstance(c.type, LargeBinary) else c.type.dialect_impl(dialect).bind_processor(dialect)
            for c in table.columns
        }

    def converter(self, column: str) -> Callable[[Any], Any]:
        """The conversion of one column's non-null Python values to driver values."""
        proc = self._procs[column]
        return _identity if proc is None else proc

    def row(self, values: Sequence[Any]) -> Any:
        """Driver parameters of one row from converted values in the table's column order."""
        if self.positional:
            return tuple(values)
        return dict(zip(self.columns, values, strict=True))

    def rows(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """:meth:`row` of each of ``rows`` (the list itself when the driver takes tuples)."""
        return rows if self.positional else [self.row(r) for r in rows]

    def value(self, params: Any, column: str) -> Any:
        """One column's driver value back out of a row's parameters."""
        if self.positional:
            return params[self._position[column]]
        return params[column]

    def key(self, *columns: str) -> Callable[[Any], Any]:
        """A sort key picking ``columns`` out of rows' parameters (e.g. to insert in primary-key order)."""
        if self.positional:
            return itemgetter(*[self._position[c] for c in columns])
        return itemgetter(*columns)

    def write(self, conn: Connection, params: Sequence[Any]) -> None:
        """Insert the rows (made by :meth:`row`) in the caller's transaction."""
        params = _blobs_as_bytearrays(params, self.blob_positions)
        k = self._per_statement
        whole = len(params) - len(params) % k if k > 1 else 0
        if whole:
            flat = chain.from_iterable
            conn.exec_driver_sql(self._multi_sql, [tuple(flat(params[i : i + k])) for i in range(0, whole, k)])
        if whole < len(params):
            conn.exec_driver_sql(self.sql, list(params[whole:]))

    def shared(self, *columns: str) -> SharedRows:
        """A writer of rows in which ``columns`` hold one value in every row (given at each write);
        each row then carries only the other columns, in the table's column order."""
        return SharedRows(self, columns)


class SharedRows:
    """Inserts rows that share some column values (a batch's timestamp, status, actor...).

    Rows are tuples of the other columns' driver values ("own" columns, in the table's order). On
    SQLite the shared values are bound once per statement, ``INSERT ... SELECT ?, column1, ...
    FROM (VALUES (...), ...)``, and each row binds only its own columns: at import sizes that costs
    measurably less than binding every column of every row. Other drivers get whole rows through
    :meth:`RowCodec.write`. The rows stored are the same either way.
    """

    def __init__(self, codec: RowCodec, shared: Sequence[str]) -> None:
        unknown = set(shared) - set(codec.columns)
        if unknown:
            raise ValueError(f"unknown columns: {', '.join(sorted(unknown))}")
        self.codec = codec
        self.shared = [c for c in codec.columns if c in shared]
        self.own = [c for c in codec.columns if c not in shared]
        if not self.own:
            raise ValueError("every column is shared")
        self._position = {name: i for i, name in enumerate(self.own)}
        # SQLite: "?" for a shared column (bound once), columnN for the Nth own column of each row.
        self._per_statement = max(1, min(200, (999 - len(shared)) // len(self.own))) if codec.sqlite_multi else 0
        numbered = iter(range(1, len(self.own) + 1))
        picks = ", ".join("?" if c in shared else f"column{next(numbered)}" for c in codec.columns)
        head = codec.sql.partition(" VALUES ")[0]
        self._select = f"{head} SELECT {picks} FROM (VALUES "  # noqa: S608 - column names and placeholders only
        self._one = "(" + ", ".join(["?"] * len(self.own)) + ")"
        self._multi_sql = self._select + ",".join([self._one] * self._per_statement) + ")"
        self._blob_positions = [
            self._position[codec.columns[i]] for i in codec.blob_positions if codec.columns[i] in self._position
        ]

    def key(self, *columns: str) -> Callable[[Any], Any]:
        """A sort key picking own ``columns`` out of rows."""
        return itemgetter(*[self._position[c] for c in columns])

    def value(self, row: Sequence[Any], column: str) -> Any:
        """One own column's value out of a row."""
        return row[self._position[column]]

    def write(self, conn: Connection, rows: Sequence[Sequence[Any]], shared: Mapping[str, Any]) -> None:
        """Insert ``rows`` in the caller's transaction, each shared column holding its value in
        ``shared`` (column name -> driver value)."""
        if sorted(shared) != sorted(self.shared):
            raise ValueError(f"values of exactly the shared columns expected: {', '.join(self.shared)}")
        if not rows:
            return
        k = self._per_statement
        if not k:
            position = self._position
            whole = [[shared[c] if c in shared else row[position[c]] for c in self.codec.columns] for row in rows]
            self.codec.write(conn, [self.codec.row(r) for r in whole])
            return
        rows = _blobs_as_bytearrays(rows, self._blob_positions)
        flat, bound = chain.from_iterable, tuple(shared[c] for c in self.shared)
        whole_statements = len(rows) - len(rows) % k
        if whole_statements:
            statements = [bound + tuple(flat(rows[i : i + k])) for i in range(0, whole_statements, k)]
            conn.exec_driver_sql(self._multi_sql, statements)
        if whole_statements < len(rows):
            rest = rows[whole_statements:]
            sql = self._select + ",".join([self._one] * len(rest)) + ")"
            conn.exec_driver_sql(sql, bound + tuple(flat(rest)))
