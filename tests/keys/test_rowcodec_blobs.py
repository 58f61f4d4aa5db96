"""RowCodec and SharedRows bind SQLite binary columns as bytearrays (no adapter lookup per value):
the rows stored are exactly those that binding the bytes themselves stores, empty and NULL values
included, and values of other types in a binary column are left alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, Integer, LargeBinary, MetaData, String, Table, create_engine, select, text

from keys.rowcodec import RowCodec, _blobs_as_bytearrays

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(20), nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("maybe", LargeBinary, nullable=True),
    Column("kind", String(8), nullable=False),
)


@contextmanager
def _engine() -> Iterator[Engine]:
    e = create_engine("sqlite://")
    metadata.create_all(e)
    try:
        yield e
    finally:
        e.dispose()


def _stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT id, name, blob, typeof(blob), maybe, typeof(maybe), kind FROM things ORDER BY id")
            )
        ]


def _plain(engine: Engine, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What binding the values as they are stores (one plain executemany)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM things")
        if rows:
            conn.exec_driver_sql("INSERT INTO things VALUES (?, ?, ?, ?, ?)", rows)
    stored = _stored(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM things")
    return stored


_blob = st.binary(max_size=40)
_rows = st.lists(st.tuples(_blob, st.none() | _blob), max_size=250)


@settings(max_examples=40, deadline=None)
@given(values=_rows, none_somewhere=st.booleans())
def test_rows_stored_are_those_of_plain_binding(values: list[Any], none_somewhere: bool) -> None:
    with _engine() as engine:
        _check(engine, values, none_somewhere)


def _check(engine: Engine, values: list[Any], none_somewhere: bool) -> None:
    rows = [(i, f"n{i}", b, m if none_somewhere else (m or b""), "k") for i, (b, m) in enumerate(values)]
    expected = _plain(engine, rows)
    codec = RowCodec(things, engine.dialect)
    assert codec.blob_positions == [2, 3]
    with engine.begin() as conn:
        codec.write(conn, rows)
    assert _stored(engine) == expected
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM things")
        codec.shared("kind").write(conn, [r[:4] for r in rows], {"kind": "k"})
    assert _stored(engine) == expected
    assert all(r[3] == "blob" for r in expected)
    with engine.connect() as conn:  # read back as bytes, as before
        assert all(type(b) is bytes for (b,) in conn.execute(select(things.c.blob)))


def test_only_columns_of_bytes_become_bytearrays() -> None:
    rows = [(1, b"a", None, "x", b""), (2, b"b", b"c", b"y", b"\x00")]
    out = _blobs_as_bytearrays(rows, [1, 2, 3, 4])
    assert out == rows  # bytearray == bytes
    assert [[type(v).__name__ for v in r] for r in out] == [
        ["int", "bytearray", "NoneType", "str", "bytearray"],
        ["int", "bytearray", "bytes", "bytes", "bytearray"],
    ]
    assert _blobs_as_bytearrays(rows, []) is rows
    assert _blobs_as_bytearrays([], [1]) == []
    assert _blobs_as_bytearrays([(1, None)], [1]) == [(1, None)]
