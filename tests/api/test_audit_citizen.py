"""The citizen's access log over HTTP, and deferred disclosure: an agency hides its own accesses
from the citizen (not from compliance) until a date, with a registered legal basis and a compliance
officer's approval (tests/api/test_audit_deferrals.py covers the approval). All data is fictitious.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from vault.audit import deferral
from vault.audit.log import Actor
from vault.demo_registry import seed_registry
from vault.runtime import Vault, init_vault

Env = tuple[TestClient, Vault, AppSettings]
Headers = dict[str, str]
PROBLEM = "application/problem+json"
BASIS = "fraud-investigation"  # registered in policies/deferral-bases.yaml
CASEWORKER = Actor("caseworker@benefits-office", "caseworker", "benefits-office")
APPROVER = Actor("compliance@vault", "compliance-officer", "vault")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10)
    vault = init_vault(settings)
    seed_registry(vault.registry)
    with TestClient(create_app(settings, vault)) as client:
        yield client, vault, settings
    vault.close()


def _token(vault: Vault, settings: AppSettings, subject: str, role: str, agency: str | None) -> Headers:
    tok = issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 600)
    return {"Authorization": f"Bearer {tok}"}


class People:
    """Two citizens, Ada and Bram, and the officers who deal with them."""

    def __init__(self, client: TestClient, vault: Vault, settings: AppSettings) -> None:
        self.client = client
        self.ada = str(
            vault.profiles.create(
                {"given_name": "Adalind", "family_name": "Testworth", "national_id": "933-100-001"}, "civil-registry"
            )
        )
        self.bram = str(
            vault.profiles.create(
                {"given_name": "Bramwell", "family_name": "Testworth", "national_id": "933-100-002"}, "civil-registry"
            )
        )
        self.registrar = _token(vault, settings, "registrar@civil-registry", "registrar", "civil-registry")
        self.caseworker = _token(vault, settings, "caseworker@benefits-office", "caseworker", "benefits-office")
        self.compliance = _token(vault, settings, "compliance@vault", "compliance-officer", "vault")
        self.me = {c: _token(vault, settings, c, "citizen", None) for c in (self.ada, self.bram)}

    def read(self, citizen: str) -> None:
        assert self.client.get(f"/v1/citizens/{citizen}?fields=given_name", headers=self.registrar).status_code == 200

    def look_up(self, national_id: str) -> None:
        found = self.client.get(f"/v1/citizens?national_id={national_id}", headers=self.caseworker)
        assert found.status_code == 200 and len(found.json()["ids"]) == 1

    def access_log(self, citizen: str) -> list[dict[str, Any]]:
        response = self.client.get("/v1/me/access-log", params={"limit": 1000}, headers=self.me[citizen])
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def events(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/audit/events", params={"limit": 1000, **params}, headers=self.compliance)
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def lookup_seq(self, citizen: str) -> int:
        found = self.events(citizen_id=citizen, action="citizens.lookup", actor="caseworker@benefits-office")
        return int(found[-1]["seq"])

    def defer(self, seqs: list[int], until: datetime | str, headers: Headers | None = None) -> Any:
        """Request a deferral and, when the request is accepted, have compliance@vault approve it."""
        when = until if isinstance(until, str) else until.isoformat()
        body = {"events": seqs, "legal_basis": BASIS, "until": when}
        requested = self.client.post("/v1/audit/deferrals", json=body, headers=headers or self.caseworker)
        if requested.status_code != 201:
            return requested
        approved = self.client.post(f"/v1/audit/deferrals/{requested.json()['id']}/approve", headers=self.compliance)
        assert approved.status_code == 200, approved.text
        return approved


@pytest.fixture
def people(env: Env) -> People:
    return People(*env)


def test_a_citizen_sees_only_entries_about_themselves_with_the_basis(people: People) -> None:
    p = people
    p.read(p.ada)
    p.read(p.bram)
    p.look_up("933-100-001")
    assert p.client.get("/v1/me", headers=p.me[p.ada]).status_code == 200

    ada, bram = p.access_log(p.ada), p.access_log(p.bram)
    about_ada = {e["seq"] for e in p.events(citizen_id=p.ada) if e["action"] not in ("me.access-log", "audit.read")}
    about_bram = {e["seq"] for e in p.events(citizen_id=p.bram) if e["action"] not in ("me.access-log", "audit.read")}
    assert {e["seq"] for e in ada} == about_ada
    assert {e["seq"] for e in bram} == about_bram
    assert not about_ada & about_bram

    basis = {(e["action"], e["who"], e["basis"]) for e in ada}
    assert ("citizens.create", "operator", "vault operator") in basis
    assert ("citizens.read", "registrar@civil-registry", "registrar role at civil-registry") in basis
    assert ("citizens.lookup", "caseworker@benefits-office", "caseworker role at benefits-office") in basis
    assert ("me.read", "you", "you") in basis
    read = next(e for e in ada if e["action"] == "citizens.read")
    assert read["fields"] == ["given_name"] and read["outcome"] == "allowed"
    # Reading one's access log is recorded; a compliance review of one's events is audited under the
    # reviewer (reason names the citizen) but is not an access to the citizen's data, so it is not listed:
    # listing it could reveal an investigation whose own events are deferred.
    later = {(e["action"], e["basis"]) for e in p.access_log(p.ada)}
    assert ("me.access-log", "you") in later
    assert not any(action == "audit.read" for action, _ in later)
    reviews = [e for e in p.events(action="audit.read") if e["reason"] == f"events citizen={p.ada}"]
    assert reviews, "the compliance review of Ada's events is itself audited"


def test_an_identity_that_is_not_a_citizen_id_has_no_access_log(env: Env) -> None:
    client, vault, settings = env
    response = client.get("/v1/me/access-log", headers=_token(vault, settings, "not-a-uuid", "citizen", None))
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)


def test_a_deferral_hides_the_events_and_itself_from_the_citizen_but_not_from_compliance(people: People) -> None:
    p = people
    p.look_up("933-100-001")
    p.look_up("933-100-002")
    hidden = p.lookup_seq(p.ada)
    bram_before = p.access_log(p.bram)

    created = p.defer([hidden], datetime.now(UTC) + timedelta(days=30))
    assert created.status_code == 200, created.text
    [recorded_by] = [e["seq"] for e in p.events(citizen_id=p.ada, action="audit.defer")]

    ada = p.access_log(p.ada)
    seqs = {e["seq"] for e in ada}
    assert hidden not in seqs, "the deferred event is shown to the citizen"
    assert recorded_by not in seqs and "audit.defer" not in {e["action"] for e in ada}, "the deferral tips them off"
    assert "citizens.lookup" not in {e["action"] for e in ada}
    # Only the events named are deferred: the next look-up is shown.
    p.look_up("933-100-001")
    assert [e["action"] for e in p.access_log(p.ada)].count("citizens.lookup") == 1
    # Bram's log is untouched; compliance sees everything, the deferral with its basis.
    assert p.access_log(p.bram)[: len(bram_before)] == bram_before
    assert "citizens.lookup" in {e["action"] for e in p.access_log(p.bram)}
    review = {e["seq"]: e for e in p.events(citizen_id=p.ada)}
    assert review[hidden]["action"] == "citizens.lookup"
    assert review[recorded_by]["action"] == "audit.defer" and BASIS in review[recorded_by]["reason"]
    assert (
        created.json()["agency"] == "benefits-office" and "caseworker@benefits-office" in review[recorded_by]["reason"]
    )

    again = p.defer([hidden], datetime.now(UTC) + timedelta(days=30))
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)


def test_a_deferral_whose_date_has_passed_hides_nothing(env: Env, people: People) -> None:
    _, vault, _ = env
    p = people
    p.look_up("933-100-001")
    hidden = p.lookup_seq(p.ada)
    bases = deferral.load_bases(vault.settings.deferral_bases_path)
    then = datetime.now(UTC) - timedelta(days=10)
    made = deferral.request(vault.audit, CASEWORKER, [hidden], BASIS, then + timedelta(days=5), bases, now=then)
    deferral.decide(vault.audit, APPROVER, made.id, True, None, bases, now=then)
    [recorded_by] = [e["seq"] for e in p.events(citizen_id=p.ada, action="audit.defer")]

    seqs = {e["seq"] for e in p.access_log(p.ada)}
    assert hidden in seqs and recorded_by in seqs, "a deferral past its date still hides events"
    # It ended within the flags' window: listed for review.
    flags = p.client.get("/v1/audit/flags", headers=p.compliance).json()
    assert [f["rule"] for f in flags if made.id in f["detail"]] == ["deferral-ended"]

    # A deferral ending a moment from now still hides; its end is the only thing that differs.
    p.look_up("933-100-001")
    soon = p.lookup_seq(p.ada)
    now = datetime.now(UTC)
    ending = deferral.request(vault.audit, CASEWORKER, [soon], BASIS, now + timedelta(minutes=5), bases, now=now)
    deferral.decide(vault.audit, APPROVER, ending.id, True, None, bases, now=now)
    assert soon not in {e["seq"] for e in p.access_log(p.ada)}
    flags = p.client.get("/v1/audit/flags", headers=p.compliance).json()
    assert [f["rule"] for f in flags if ending.id in f["detail"]] == ["deferral-ending"]


def test_a_caseworker_cannot_defer_another_agencys_events(people: People) -> None:
    p = people
    p.read(p.ada)
    theirs = p.events(citizen_id=p.ada, action="citizens.read")[-1]["seq"]
    future = datetime.now(UTC) + timedelta(days=30)

    for seqs in ([theirs], [10**9]):
        refused = p.defer(seqs, future)
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["type"].endswith("/not-found")
    assert theirs in {e["seq"] for e in p.access_log(p.ada)}
    # Only caseworkers defer: not the registrar whose event it is, not compliance, not the citizen.
    for headers in (p.registrar, p.compliance, p.me[p.ada]):
        assert p.defer([theirs], future, headers).status_code == 403


def test_invalid_deferrals_are_422_problem_documents(people: People) -> None:
    p = people
    p.look_up("933-100-001")
    seq = p.lookup_seq(p.ada)
    now = datetime.now(UTC)
    cases: list[dict[str, Any]] = [
        {"events": [seq], "legal_basis": BASIS, "until": (now - timedelta(days=1)).isoformat()},
        {"events": [seq], "legal_basis": BASIS, "until": (now + timedelta(days=4 * 365)).isoformat()},
        {"events": [seq], "legal_basis": BASIS, "until": "2031-01-01T00:00:00"},
        {"events": [seq], "legal_basis": "   ", "until": (now + timedelta(days=1)).isoformat()},
        {"events": [seq], "until": (now + timedelta(days=1)).isoformat()},
        {"events": [], "legal_basis": BASIS, "until": (now + timedelta(days=1)).isoformat()},
        {"events": [seq], "legal_basis": BASIS, "until": "next tuesday"},
        {"events": [seq], "legal_basis": BASIS, "until": (now + timedelta(days=1)).isoformat(), "scope": "all"},
    ]
    for body in cases:
        response = p.client.post("/v1/audit/deferrals", json=body, headers=p.caseworker)
        assert response.status_code == 422, (body, response.status_code)
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        slug = problem["type"].rsplit("/", 1)[1]
        assert problem["status"] == 422 and slug in ("invalid-request", "validation-failed"), problem
    assert seq in {e["seq"] for e in p.access_log(p.ada)}
    assert not p.events(action="audit.defer")


def test_the_access_log_pages_with_after(people: People) -> None:
    p = people
    for _ in range(5):
        p.read(p.ada)
    whole = [e["seq"] for e in p.access_log(p.ada)]
    seen: list[int] = []
    after: int | None = 0
    while after is not None:
        response = p.client.get("/v1/me/access-log", params={"after": after, "limit": 2}, headers=p.me[p.ada])
        page = response.json()
        seen += [e["seq"] for e in page["entries"]]
        after = page["next_after"]
    # Each page read is recorded too, after the reads above: compare the common prefix.
    assert seen[: len(whole)] == whole and len(set(seen)) == len(seen)
