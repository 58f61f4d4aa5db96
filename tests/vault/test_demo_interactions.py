"""The demo's interactions (issue 15): seeded in bulk with their facts, history and keys, readable
through the service, idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from vault import demo
from vault.audit.log import Actor
from vault.demo_interactions import seed_interactions
from vault.demo_registry import seed_registry
from vault.interactions.facts import interaction_facts
from vault.interactions.tables import interactions
from vault.runtime import Vault, init_vault
from vault.settings import Settings


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    seed_registry(v.registry)
    for i in range(3):
        v.profiles.create(demo.profile(i), "civil-registry")
    yield v
    v.close()


def test_seeding_writes_items_facts_and_readable_texts_once(vault: Vault) -> None:
    assert seed_interactions(vault, 400) == 400
    assert seed_interactions(vault, 400) == 0
    with vault.data_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(interactions)) == 400
        assert conn.scalar(select(func.count()).select_from(interaction_facts)) == 400
        linked = conn.scalar(
            select(func.count()).select_from(interactions).where(interactions.c.citizen_id.is_not(None))
        )
        statuses = {r[0] for r in conn.execute(select(interactions.c.status).distinct())}
        sample = conn.execute(select(interactions.c.id, interactions.c.agency).limit(20)).all()
    assert 0 < (linked or 0) < 100
    assert {"open", "resolved", "closed"} <= statuses
    for iid, agency in sample:
        item = vault.interactions.get(Actor("caseworker@demo", "caseworker", agency), iid)
        assert item.readable and item.text
