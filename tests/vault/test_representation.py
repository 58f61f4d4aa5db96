"""The representation service on SQLite and PostgreSQL (issue 17): relations are checked at the
time of each request (scope, dates, a child's majority), mandates come only from the citizen,
every refusal is audited under the represented citizen, and a change whose audit event cannot be
written leaves nothing behind. All people are invented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.audit_helpers import BACKENDS, backend_settings, load_events
from tests.support.representation_helpers import child_fields, friend_fields, parent_fields
from tests.vault.test_audit_log import _allow_audit_inserts, _refuse_audit_inserts
from vault.audit.log import Actor
from vault.demo_registry import seed_purposes, seed_registry
from vault.errors import AuditUnavailable, Refused
from vault.representation.errors import RepresentationRefused
from vault.representation.policy import RepresentationPolicy, load
from vault.representation.tables import representations
from vault.runtime import Vault, init_vault

REGISTRAR = Actor("registrar@civil-registry", "registrar", "civil-registry")


@pytest.fixture(params=BACKENDS)
def vault_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    vault = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield vault
    vault.close()


def _people(vault: Vault, child_age: int = 10) -> tuple[str, str, str]:
    p = vault.profiles
    made = [p.create(f, "civil-registry") for f in (parent_fields(), child_fields(child_age), friend_fields())]
    return str(made[0]), str(made[1]), str(made[2])


def _refusal(vault: Vault, citizen: str) -> dict[str, object]:
    denied = [e for e in load_events(vault.data_engine) if e["outcome"] == "denied" and e["citizen_id"] == citizen]
    assert denied, "the refusal was not audited"
    return denied[-1]


def _count(vault: Vault) -> int:
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(representations)) or 0)


def test_a_parent_acts_for_a_minor_until_the_majority_day(vault_env: Vault) -> None:
    v = vault_env
    parent, child, _ = _people(v, child_age=17)
    relation = v.representation.record(REGISTRAR, "parent", uuid.UUID(child), uuid.UUID(parent))
    acting = v.representation.authorise(parent, child, "view", "req-1")
    assert acting.relation.id == relation.id
    assert (acting.actor.subject, acting.actor.role, acting.actor.agency) == (
        parent,
        "representative",
        f"parent:{relation.id}",
    )
    v.representation.clock = lambda: datetime.now(UTC) + timedelta(days=366)
    with pytest.raises(RepresentationRefused) as refused:
        v.representation.authorise(parent, child, "view", "req-2")
    assert refused.value.reason == "child-of-age"
    event = _refusal(v, child)
    assert (event["action"], event["actor"], event["reason"]) == ("representation.act", parent, "child-of-age")


def test_scope_and_dates_are_checked_at_the_time_of_each_request(vault_env: Vault) -> None:
    v = vault_env
    giver, _, holder = _people(v)
    start, end = datetime.now(UTC) + timedelta(days=1), datetime.now(UTC) + timedelta(days=30)
    v.representation.give_mandate(Actor(giver, "citizen", "-"), giver, "971-000-003", ["view"], start, end)
    reasons = []
    for days, action in ((0, "view"), (2, "consents"), (2, "view"), (31, "view")):
        v.representation.clock = lambda d=days: datetime.now(UTC) + timedelta(days=d)  # type: ignore[misc]
        try:
            v.representation.authorise(holder, giver, action, None)
            reasons.append("allowed")
        except RepresentationRefused as exc:
            reasons.append(exc.reason)
    assert reasons == ["not-yet-valid", "outside-scope", "allowed", "representation-ended"]
    assert _refusal(v, giver)["reason"] == "representation-ended"


def test_a_mandate_given_by_someone_else_is_refused_and_audited(vault_env: Vault) -> None:
    v = vault_env
    giver, _, holder = _people(v)
    for who in (Actor(holder, "citizen", "-"), REGISTRAR, Actor(holder, "representative", f"mandate:{uuid.uuid4()}")):
        with pytest.raises(Refused) as refused:
            v.representation.give_mandate(who, giver, "971-000-003", ["view"], None, None)
        assert refused.value.reason == "mandate-by-citizen-only"
        assert _refusal(v, giver)["actor"] == who.subject
    with pytest.raises(Refused):
        v.representation.record(REGISTRAR, "mandate", uuid.UUID(giver), uuid.UUID(holder))
    assert _count(v) == 0


def test_no_relation_and_no_person_get_the_same_refusal(vault_env: Vault) -> None:
    v = vault_env
    stranger, someone, _ = _people(v)
    answers = []
    for target in (someone, str(uuid.uuid4()), "garbage"):
        with pytest.raises(RepresentationRefused) as refused:
            v.representation.authorise(stranger, target, "view", None)
        answers.append((refused.value.reason, str(refused.value)))
    assert len(set(answers)) == 1 and answers[0][0] == "no-representation"


def test_a_minors_own_consent_needs_a_parent_where_the_policy_says_so(vault_env: Vault) -> None:
    v = vault_env
    seed_registry(v.registry)
    seed_purposes(v.purposes)
    parent, child, _ = _people(v)
    kid = Actor(child, "citizen", "-")
    with pytest.raises(RepresentationRefused) as refused:
        v.consents.give(child, "benefits-office", "benefit-eligibility", None, None, actor=kid)
    assert refused.value.reason == "parent-consent-required"
    assert v.consents.find(citizen_id=child) == []
    relation = v.representation.record(REGISTRAR, "parent", uuid.UUID(child), uuid.UUID(parent))
    acting = v.representation.authorise(parent, child, "consents", None)
    assert acting.relation.id == relation.id
    given = v.consents.give(child, "benefits-office", "benefit-eligibility", None, None, actor=acting.actor)
    assert given.citizen_id == child
    # A policy naming other purposes leaves this one to the child.
    v.representation.policy = RepresentationPolicy(18, frozenset({"emergency-care"}))
    own = v.consents.give(child, "benefits-office", "benefit-eligibility", None, None, actor=kid)
    assert own.version == 2


def test_nothing_is_recorded_when_the_audit_event_cannot_be_written(vault_env: Vault) -> None:
    v = vault_env
    parent, child, _ = _people(v)
    _refuse_audit_inserts(v)
    try:
        with pytest.raises(AuditUnavailable):
            v.representation.record(REGISTRAR, "parent", uuid.UUID(child), uuid.UUID(parent))
    finally:
        _allow_audit_inserts(v)
    assert _count(v) == 0


def test_the_shipped_policy_loads_and_a_bad_one_refuses_to_start(tmp_path: Path) -> None:
    shipped = load()
    assert shipped.majority_age == 18 and shipped.needs_parent("any-purpose")
    bad = tmp_path / "representation.yaml"
    bad.write_text("majority_age: 3\n", encoding="utf-8")
    from vault.errors import ConfigurationError  # noqa: PLC0415 - one test needs it

    with pytest.raises(ConfigurationError):
        load(bad)
