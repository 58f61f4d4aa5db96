"""The session store keeps only a hash of each id, and ends sessions by person."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from vault import db
from vault.sessions import SessionStore, web_sessions


def test_the_store_keeps_only_the_ids_hash_and_ends_every_session_of_a_person(tmp_path: Path) -> None:
    engine = db.data_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    db.upgrade(engine)
    store = SessionStore(engine, timedelta(minutes=15), timedelta(hours=8))
    first, _ = store.create("caseworker@tax-office", "caseworker", "tax-office", "vault-demo")
    second, _ = store.create("caseworker@tax-office", "caseworker", "tax-office", "vault-demo")
    other, _ = store.create("registrar@civil-registry", "registrar", "civil-registry", "vault-demo")
    with engine.connect() as conn:
        stored = set(conn.scalars(select(web_sessions.c.id_hash)))
    assert first not in stored and hashlib.sha256(first.encode()).hexdigest() in stored
    assert store.end_all_for("caseworker@tax-office") == 2
    assert store.get(first) is None and store.get(second) is None
    found = store.get(other)
    assert found is not None and found.subject == "registrar@civil-registry"
    engine.dispose()
