"""Reads asked not to wait (``wait=False``, the HTTP layer's event-loop path on SQLite) either run
now or raise WouldWait having changed nothing: no use spent, no audit event, no data."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keys.sqlstore import WouldWait
from tests.support.grants_helpers import TAX, citizen_fields
from vault.audit.tables import audit_events
from vault.demo_registry import seed_purposes, seed_registry
from vault.errors import NotFound, Refused
from vault.grants.service import QUICK_PAGE, GrantRequest
from vault.grants.tables import grants
from vault.runtime import Vault, init_vault
from vault.settings import Settings

FIELDS = ["given_name", "family_name", "income"]


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    seed_registry(v.registry)
    seed_purposes(v.purposes)
    yield v
    v.close()


def _events(vault: Vault) -> int:
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(audit_events)) or 0)


def _uses(vault: Vault, grant_id: str) -> int:
    return vault.grants.get(TAX.agency, grant_id).uses


def test_a_held_write_lock_means_wouldwait_and_nothing_done(vault: Vault, tmp_path: Path) -> None:
    citizen = vault.profiles.create(citizen_fields(1), "civil-registry")
    grant = vault.grants.request(TAX, GrantRequest([str(citizen)], "tax-assessment", FIELDS, 3600, 10))
    other = sqlite3.connect(tmp_path / "data" / "vault.db", isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    before = _events(vault)
    with pytest.raises(WouldWait):
        vault.profiles.read(citizen, actor=TAX, wait=False)
    with pytest.raises(WouldWait):
        vault.grants.read(TAX, grant.id, wait=False)
    other.execute("ROLLBACK")
    other.close()
    assert _events(vault) == before and _uses(vault, grant.id) == 0
    assert vault.profiles.read(citizen, actor=TAX, wait=False).values["family_name"] == "Testworth"
    _, records, _ = vault.grants.read(TAX, grant.id, wait=False)
    assert records[0][1] is not None and sorted(records[0][1]) == sorted(FIELDS)
    assert _events(vault) == before + 2 and _uses(vault, grant.id) == 1


def test_a_big_page_is_left_for_the_threadpool_with_its_use_unspent(vault: Vault) -> None:
    ids = [
        str(vault.profiles.create({"given_name": f"Quick{n}", "family_name": "Testworth"}, "civil-registry"))
        for n in range(QUICK_PAGE + 1)
    ]
    grant = vault.grants.request(TAX, GrantRequest(ids, "tax-assessment", FIELDS, 3600, 10))
    before = _events(vault)
    with pytest.raises(WouldWait):
        vault.grants.read(TAX, grant.id, limit=QUICK_PAGE + 1, wait=False)
    assert _events(vault) == before and _uses(vault, grant.id) == 0
    _, records, _ = vault.grants.read(TAX, grant.id, limit=QUICK_PAGE, wait=False)  # a small page runs now
    assert len(records) == QUICK_PAGE and _uses(vault, grant.id) == 1


def test_refusals_are_recorded_by_the_retry_that_may_wait(vault: Vault) -> None:
    before = _events(vault)
    missing = uuid.uuid4()
    with pytest.raises(WouldWait):
        vault.profiles.read(missing, actor=TAX, wait=False)
    with pytest.raises(WouldWait):
        vault.grants.read(TAX, str(uuid.uuid4()), wait=False)
    assert _events(vault) == before
    with pytest.raises(NotFound):
        vault.profiles.read(missing, actor=TAX)
    with pytest.raises(NotFound):
        vault.grants.read(TAX, str(uuid.uuid4()))
    assert _events(vault) == before + 2
    citizen = vault.profiles.create(citizen_fields(2), "civil-registry")
    grant = vault.grants.request(TAX, GrantRequest([str(citizen)], "tax-assessment", FIELDS, 3600, 1))
    vault.grants.read(TAX, grant.id)
    with pytest.raises(WouldWait):  # exhausted: recorded (status and event) only by the waiting retry
        vault.grants.read(TAX, grant.id, wait=False)
    # The stored status (GET /v1/grants/{id} derives "exhausted" from the uses either way).
    stored = select(grants.c.status).where(grants.c.id == grant.id)
    with vault.data_engine.connect() as conn:
        assert conn.scalar(stored) == "active"
    with pytest.raises(Refused, match="spent"):
        vault.grants.read(TAX, grant.id)
    with vault.data_engine.connect() as conn:
        assert conn.scalar(stored) == "exhausted"
