"""A throwaway local PostgreSQL server for benchmarks, started the way the test suite starts one
(tests/support/pg.py): initdb + pg_ctl in a temporary directory, 127.0.0.1 only. Unlike the tests
it keeps PostgreSQL's default durability (fsync on), since benchmarks should show commit costs."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package provides the postgres account.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def server() -> Iterator[int]:
    """Start PostgreSQL; yield its port; stop and delete it afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL server binaries not found (Debian package postgresql)")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="cv-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    datadir = root / "data"
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c max_connections=300"
    pg_ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(datadir), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield port
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(datadir), "-m", "fast", "stop"]), check=False, capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def new_database(port: int) -> str:
    """Create an empty database; its SQLAlchemy URL."""
    name = "b_" + uuid.uuid4().hex[:12]
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name generated here, not input
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"
