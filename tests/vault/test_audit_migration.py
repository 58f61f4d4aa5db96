"""Migration v0006 (SQLite: `seq` becomes the rowid of audit_events) keeps the log intact and
append-only, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from keys import migrate
from tests.support.audit_helpers import CLERK, populate
from vault.audit.log import Event
from vault.audit.verify import verify_database
from vault.db import DATA_SCRIPTS, DATA_VERSION_TABLE
from vault.runtime import init_vault
from vault.settings import Settings


def _schema(conn: Connection) -> str:
    rows = conn.execute(text("SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events'"))
    return "\n".join(r[0] or "" for r in rows)


def test_rowid_migration_round_trip_keeps_the_log(tmp_path: Path) -> None:
    vault = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10, audit_checkpoint_every=7))
    try:
        populate(vault)
        engine = vault.data_engine
        before = verify_database(vault.audit)
        assert before.ok and before.events > 0, before.public()
        with engine.connect() as conn:
            assert "seq INTEGER NOT NULL PRIMARY KEY" in _schema(conn)

        migrate.downgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE, "v0005")
        with engine.connect() as conn:
            assert "seq BIGINT NOT NULL PRIMARY KEY" in _schema(conn)
        assert verify_database(vault.audit).events == before.events

        migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
        vault.audit.record(CLERK, Event("citizens.lookup", fields=["email"]))
        after = verify_database(vault.audit)
        assert after.ok and after.events == before.events + 1
        with engine.connect() as conn:
            schema = _schema(conn)
            assert "seq INTEGER NOT NULL PRIMARY KEY" in schema
            for name in ("ix_audit_citizen", "ix_audit_agency", "ix_audit_actor", "no_update", "no_delete"):
                assert name in schema
        for statement in (
            "UPDATE audit_events SET actor = 'x' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        vault.close()
