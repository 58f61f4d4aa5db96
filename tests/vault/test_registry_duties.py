"""The registry's separation-of-duties rules and secret expiry on both backends, the demo's seeding
as an audited operator action, and migration v0008 (issue 19, findings 5 and 14). Fictitious data only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, update

from keys import migrate
from tests.support.pg import PgServer
from vault.audit.log import Actor
from vault.audit.review import EventFilter, iter_events
from vault.db import DATA_SCRIPTS, DATA_VERSION_TABLE
from vault.demo_registry import DEMO_SECRET_DAYS, seed_registry
from vault.errors import Refused
from vault.models import clients
from vault.runtime import Vault, init_vault
from vault.settings import Settings

ADMIN = Actor("admin@tax-office", "admin", "tax-office")
DEPUTY = Actor("deputy@tax-office", "admin", "tax-office")
VAULT_ADMIN = Actor("admin@vault", "admin", "vault")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    settings = Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10)
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        settings = Settings(
            data_dir=tmp_path / "data",
            keyring_scrypt_n=2**10,
            database_url=server.new_database(),
            keystore_url=server.new_database(),
        )
    v = init_vault(settings)
    seed_registry(v.registry)
    yield v
    v.close()


def _near(moment: datetime | None, expected: datetime) -> bool:
    return moment is not None and abs(moment - expected) < timedelta(minutes=5)


def test_the_operator_seeds_active_clients_with_short_lived_secrets_audited_as_the_operator(vault: Vault) -> None:
    seeded = vault.registry.clients("tax-office")
    assert [c.status for c in seeded] == ["active"]
    assert _near(seeded[0].secret_expires_at, datetime.now(UTC) + timedelta(days=DEMO_SECRET_DAYS))
    created = list(iter_events(vault.data_engine, EventFilter(action="clients.create")))
    assert {(e.actor, e.role) for e in created} == {("operator", "operator")} and len(created) == 3


def test_reseeding_gives_an_expired_demo_client_a_new_secret(vault: Vault) -> None:
    old = vault.registry.clients("tax-office")[0]
    with vault.data_engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == old.client_id)
            .values(secret_expires_at=datetime.now(UTC) - timedelta(days=1))
        )
    assert vault.registry.client_refusal(old.client_id) == "secret-expired"
    again = {c.agency: c for c in seed_registry(vault.registry)}
    fresh = again["tax-office"]
    assert fresh.client_id == old.client_id and fresh.secret is not None
    assert again["city-clinic"].secret is None, "an unexpired demo secret is left alone"
    client, why = vault.registry.check_client(fresh.client_id, fresh.secret)
    assert why == "" and client is not None and client.status == "active"


def test_a_persons_client_waits_for_a_different_admin(vault: Vault) -> None:
    registry = vault.registry
    client, secret = registry.create_client("tax-office", "Batch", actor=ADMIN)
    assert (client.status, client.created_by, client.approved_by) == ("pending-approval", ADMIN.subject, None)
    assert registry.check_client(client.client_id, secret) == (None, "client-pending")
    assert registry.check_client(client.client_id, "cvs_wrong") == (None, "invalid-client")
    with pytest.raises(Refused) as refused:
        registry.approve_client(client.client_id, actor=ADMIN)
    assert refused.value.reason == "own-client"
    denied = list(iter_events(vault.data_engine, EventFilter(action="clients.approve", outcome="denied")))
    assert [(e.actor, (e.reason or "").split(":")[0]) for e in denied] == [(ADMIN.subject, "own-client")]
    approved = registry.approve_client(client.client_id, actor=DEPUTY)
    assert (approved.status, approved.approved_by) == ("active", DEPUTY.subject)
    assert registry.check_client(client.client_id, secret)[1] == ""
    # Re-keyed by the approver, it waits again; neither the new secret's holder nor the creator approves.
    rotated, new_secret = registry.rotate_secret(client.client_id, actor=DEPUTY)
    assert rotated.status == "pending-approval"
    assert registry.check_client(client.client_id, secret) == (None, "invalid-client")
    with pytest.raises(Refused):
        registry.approve_client(client.client_id, actor=DEPUTY)
    with pytest.raises(Refused):  # the creator never approves their own client either
        registry.approve_client(client.client_id, actor=ADMIN)
    registry.approve_client(client.client_id, actor=VAULT_ADMIN)
    assert registry.check_client(client.client_id, new_secret)[1] == ""


def test_admin_and_compliance_officer_exclude_each_other(vault: Vault) -> None:
    registry = vault.registry
    registry.assign("pat@tax-office", "tax-office", "admin", actor=VAULT_ADMIN)
    for agency in ("tax-office", "vault"):
        with pytest.raises(Refused) as refused:
            registry.assign("pat@tax-office", agency, "compliance-officer", actor=VAULT_ADMIN)
        assert refused.value.reason == "duty-conflict"
    registry.assign("pat@tax-office", "city-clinic", "compliance-officer", actor=VAULT_ADMIN)  # another agency
    with pytest.raises(Refused) as refused:
        registry.assign("compliance@vault", "city-clinic", "admin", actor=VAULT_ADMIN)
    assert refused.value.reason == "duty-conflict"
    assert not registry.holds("compliance@vault", "city-clinic", "admin")


def test_migration_v0008_gives_existing_clients_an_expiry_and_keeps_them_working(tmp_path: Path) -> None:
    vault = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    try:
        engine = vault.data_engine
        vault.registry.create_agency("tax-office", "Tax Office")
        client, secret = vault.registry.create_client("tax-office", "Older app")
        migrate.downgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE, "v0006")
        assert "secret_expires_at" not in {c["name"] for c in inspect(engine).get_columns("clients")}
        migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
        with engine.connect() as conn:
            row = conn.execute(select(clients).where(clients.c.client_id == client.client_id)).one()
        assert row.status == "active" and row.created_by is None
        upgraded = vault.registry.client(client.client_id)
        assert _near(upgraded.secret_expires_at, datetime.now(UTC) + timedelta(days=90))
        assert vault.registry.check_client(client.client_id, secret)[1] == ""
    finally:
        vault.close()
