"""Readiness checks (GET /readyz): each raises when its part is not usable; reasons are codes and
exception type names, never messages (a driver's message can carry connection details)."""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from vault.runtime import Vault

# A database that is down, unreachable, restarting or (SQLite) busy past the timeout: the request
# did nothing (its transaction never committed) and may be retried; answered 503 + Retry-After.
STORE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, DisconnectionError)
RETRY_AFTER_SECONDS = 5


class NotReady(Exception):
    """A part of the service is up but not usable; the message is a fixed phrase."""


def reason_of(check: Callable[[], None]) -> str | None:
    """None when ``check`` passes; otherwise a short, fixed reason."""
    try:
        check()
    except NotReady as exc:
        return str(exc)
    except Exception as exc:  # any failure means not ready; its type says which kind
        return f"failed: {type(exc).__name__}"
    return None


def store_answers(engine: Engine) -> None:
    """The database answers a query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def keys_usable(vault: Vault) -> None:
    """The KEK provider and the token signing keys are usable."""
    vault.provider.active_version()
    vault.signing.active()


def audit_writable(vault: Vault) -> None:
    """The audit log can be appended to: its head record is there and the store accepts writes
    (a read-only PostgreSQL standby, a read-only SQLite file or directory would refuse every
    audited request). Nothing is written: a probe must not add events."""
    engine = vault.data_engine
    with engine.connect() as conn:
        if conn.scalar(text("SELECT count(*) FROM audit_head")) != 1:
            raise NotReady("audit head record missing")
        if engine.dialect.name == "postgresql":
            if conn.scalar(text("SHOW transaction_read_only")) == "on":
                raise NotReady("database is read-only")
            return
    database = engine.url.database
    if database and database != ":memory:":
        for path in (database, os.path.dirname(database) or "."):
            if not os.access(path, os.W_OK):
                raise NotReady("database file is read-only")
