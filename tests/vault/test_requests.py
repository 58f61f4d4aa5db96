"""Rights requests in the vault, on SQLite and PostgreSQL: the deadline with a controllable clock,
overdue lists, and the bytes at rest (proposed values and messages are never stored in clear)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.grants_helpers import Clock, citizen_actor
from tests.support.stores import stored_bytes
from tests.vault.test_storage_backends import vault_env
from vault.audit.log import Actor
from vault.audit.verify import verify_database
from vault.demo_registry import seed_purposes, seed_registry
from vault.requests.handling import RequestDesk
from vault.requests.model import add_months
from vault.runtime import Vault

REGISTRAR = Actor("registrar@civil-registry", "registrar", "civil-registry")
COMPLIANCE = Actor("compliance@vault", "compliance-officer", "vault")
TAX_COMPLIANCE = Actor("compliance@tax-office", "compliance-officer", "tax-office")
PROPOSED = "12 Unmistakable Proposalmarker Street"
MESSAGE = "Messagemarker: I moved to a very invented place"
PERSON = {
    "given_name": "Ottoline",
    "family_name": "Requestworth",
    "national_id": "963-000-001",
    "address": "1 Old Road",
}


@pytest.fixture
def vault(vault_env: Vault) -> Vault:
    """A fresh vault on each backend (tests/vault/test_storage_backends.py) with the demo's registry and purposes."""
    seed_registry(vault_env.registry)
    seed_purposes(vault_env.purposes)
    return vault_env


def desk_at(vault: Vault, clock: Clock) -> RequestDesk:
    """The vault's request service reading ``clock``."""
    return RequestDesk(
        vault.data_engine, vault.dekstore, vault.catalogue, vault.profiles, vault.purposes, vault.audit, clock
    )


def test_due_dates_are_calendar_months() -> None:
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2027, 11, 15, 9, tzinfo=UTC), 3) == datetime(2028, 2, 15, 9, tzinfo=UTC)


def test_an_unanswered_request_becomes_overdue_and_an_extension_moves_it(vault: Vault) -> None:
    clock = Clock(datetime(2027, 3, 1, 12, tzinfo=UTC))
    desk = desk_at(vault, clock)
    cid = str(vault.profiles.create(PERSON, "civil-registry"))
    made = desk.submit(citizen_actor(cid), cid, "rectification", changes={"address": PROPOSED})
    assert made.due_at == "2027-04-01T12:00:00.000000Z" and not made.overdue

    clock.now = datetime(2027, 4, 1, 11, tzinfo=UTC)
    assert desk.overdue(COMPLIANCE)[0] == 0
    clock.now = datetime(2027, 4, 2, tzinfo=UTC)
    count, listed = desk.overdue(COMPLIANCE)
    assert count == 1 and [r.id for r in listed] == [made.id] and listed[0].overdue
    assert desk.overdue(REGISTRAR)[0] == 1, "the routed agency sees its own overdue request"
    assert desk.overdue(TAX_COMPLIANCE)[0] == 0, "another agency's compliance officer does not"
    assert [r.id for r in desk.queue(COMPLIANCE, overdue=True)] == [made.id]

    desk.extend(REGISTRAR, made.id, 1, "Waiting for the archive")
    assert desk.overdue(COMPLIANCE)[0] == 0
    assert desk.handled(COMPLIANCE, made.id).due_at == "2027-05-01T12:00:00.000000Z"
    clock.now += timedelta(days=40)
    assert desk.overdue(COMPLIANCE)[0] == 1
    desk.accept(REGISTRAR, made.id)
    assert desk.overdue(COMPLIANCE)[0] == 0, "a closed request is never overdue"
    assert verify_database(vault.audit).finding is None


def test_proposed_values_and_messages_rest_only_encrypted(vault: Vault, request: pytest.FixtureRequest) -> None:
    cid = str(vault.profiles.create(PERSON, "civil-registry"))
    desk = vault.requests
    made = desk.submit(citizen_actor(cid), cid, "rectification", changes={"address": PROPOSED}, message=MESSAGE)
    desk.message(REGISTRAR, made.id, "Officermarker reply about the invented street")
    assert desk.proposed(REGISTRAR, made.id) == {"address": PROPOSED}
    assert desk.mine(citizen_actor(cid), cid, made.id).messages[0].text == MESSAGE
    stored = stored_bytes(vault, request)
    for marker in ("Proposalmarker", "Messagemarker", "Officermarker"):
        assert marker.encode() not in stored, f"{marker} rests in clear"


def test_erasure_shreds_the_messages_but_keeps_the_outcome(vault: Vault) -> None:
    cid = str(vault.profiles.create(PERSON, "civil-registry"))
    desk = vault.requests
    made = desk.submit(citizen_actor(cid), cid, "erasure", message=MESSAGE)
    desk.approve(REGISTRAR, made.id)
    done = desk.complete(REGISTRAR, made.id)
    assert done.status == "complete" and done.messages[0].text is None
    assert set(done.detail["outcome"]["held"]) == {"given_name", "family_name"}
    assert done.detail["outcome"]["destroyed"] == ["address", "national_id"]
    assert vault.profiles.read(uuid.UUID(cid)).status == "erased"


__all__ = ["vault_env"]  # the backend fixture, shared with the storage tests
