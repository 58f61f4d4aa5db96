"""Deferred disclosure needs a registered legal basis, a second person's approval, a length the basis
allows, and shows up for review (issue 19, finding 6). All people, agencies and statutes are invented.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx import Response
from sqlalchemy import insert

from tests.support.api_world import ODILE, World, open_world, problem
from vault.audit import deferral
from vault.audit.log import Actor
from vault.errors import Refused
from vault.models import role_assignments

BASIS = "fraud-investigation"  # policies/deferral-bases.yaml: at most 365 days


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        w.vault.registry.assign("compliance@benefits-office", "benefits-office", "compliance-officer")
        w.vault.registry.assign("compliance@tax-office", "tax-office", "compliance-officer")
        # One person who is both a caseworker and a compliance officer of the benefits office: the
        # registry refuses the pair now (vault/duties.py), so it is written as data from before the rule.
        w.vault.registry.assign("dual@benefits-office", "benefits-office", "caseworker")
        with w.vault.data_engine.begin() as conn:
            conn.execute(
                insert(role_assignments).values(
                    subject="dual@benefits-office",
                    agency="benefits-office",
                    role="compliance-officer",
                    created_at=datetime.now(UTC),
                )
            )
        yield w


def _later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _request(w: World, seqs: list[int], headers: dict[str, str] | None = None, **body: str) -> Response:
    payload = {"events": seqs, "legal_basis": BASIS, "until": _later(30)} | body
    response: Response = w.client.post("/v1/audit/deferrals", json=payload, headers=headers or w.benefits)
    return response


def _decide(w: World, deferral_id: str, headers: dict[str, str], verdict: str = "approve") -> Response:
    response: Response = w.client.post(f"/v1/audit/deferrals/{deferral_id}/{verdict}", headers=headers)
    return response


def _looked_up(w: World, headers: dict[str, str]) -> tuple[str, int]:
    """A citizen looked up by ``headers``' agency; returns (citizen id, the look-up's seq)."""
    odile = w.citizen(ODILE)
    assert w.client.get("/v1/citizens", params={"national_id": ODILE["national_id"]}, headers=headers).is_success
    seq = w.events(citizen_id=odile, action="citizens.lookup")[-1]["seq"]
    return odile, int(seq)


def _seen(w: World, citizen: str) -> set[int]:
    return {int(e["seq"]) for e in w.access_log(citizen)}


def test_a_request_hides_nothing_until_another_compliance_officer_approves_it(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.benefits)
    created = _request(w, [seq])
    assert created.status_code == 201, created.text
    deferral = created.json()
    assert deferral["status"] == "pending" and deferral["legal_basis"] == BASIS and deferral["events"] == 1
    # The answer names the deferral, never a position in the audit log.
    assert "recorded_by" not in deferral and "seq" not in deferral
    assert seq in _seen(w, odile), "a pending request already hides the event"

    # Caseworkers do not approve; the same event cannot be in two live requests.
    problem(_decide(w, deferral["id"], w.benefits), 403)
    problem(_request(w, [seq]), 409)
    assert seq in _seen(w, odile)

    approved = _decide(w, deferral["id"], w.compliance)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == "compliance@vault"
    assert seq not in _seen(w, odile)
    problem(_decide(w, deferral["id"], w.compliance), 409)


def test_the_requester_cannot_approve_their_own_request_under_another_role(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.benefits)
    dual_caseworker = w.token("dual@benefits-office", "caseworker", "benefits-office")
    dual_officer = w.token("dual@benefits-office", "compliance-officer", "benefits-office")
    created = _request(w, [seq], dual_caseworker)
    assert created.status_code == 201, created.text
    # The registry refuses the pair of roles; a pair from before that rule is not honoured.
    pair = {"subject": "dual@benefits-office", "agency": "benefits-office", "role": "compliance-officer"}
    problem(w.client.post("/v1/role-assignments", json=pair, headers=w.admin), 403, "duty-conflict")
    problem(_decide(w, created.json()["id"], dual_officer), 403, "role-not-held")
    # And the deferral rule itself, behind it: the same subject never approves their own request.
    approver = Actor("dual@benefits-office", "compliance-officer", "benefits-office", "req-dual")
    bases = deferral.load_bases(w.vault.settings.deferral_bases_path)
    with pytest.raises(Refused) as refused:
        deferral.decide(w.vault.audit, approver, created.json()["id"], True, "benefits-office", bases)
    assert refused.value.reason == "approver-is-requester"
    assert seq in _seen(w, odile)
    # Audited and flagged like the registry's separation-of-duties refusals.
    [event] = [e for e in w.events() if e["request_id"] == "req-dual"]
    assert (event["outcome"], event["actor"]) == ("denied", "dual@benefits-office")
    assert event["reason"].startswith("approver-is-requester:") and event["citizen_id"] is None
    flags = w.client.get("/v1/audit/flags", headers=w.compliance).json()
    assert [f for f in flags if f["rule"] == "duty-refused" and f["actor"] == "dual@benefits-office"]
    # The agency's other compliance officer may.
    agency_officer = w.token("compliance@benefits-office", "compliance-officer", "benefits-office")
    assert _decide(w, created.json()["id"], agency_officer).status_code == 200
    assert seq not in _seen(w, odile)


def test_another_agencys_compliance_officer_finds_no_such_deferral(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.benefits)
    deferral_id = _request(w, [seq]).json()["id"]
    tax_officer = w.token("compliance@tax-office", "compliance-officer", "tax-office")
    problem(_decide(w, deferral_id, tax_officer), 404)
    problem(_decide(w, "00000000-0000-4000-8000-000000000000", w.compliance), 404)
    assert seq in _seen(w, odile)


def test_a_deferral_needs_a_registered_basis_within_its_maximum_length(world: World) -> None:
    w = world
    _, seq = _looked_up(w, w.benefits)
    for body in (
        {"legal_basis": "x"},
        {"legal_basis": "Benefit Fraud Investigation Act s. 12"},  # free text is not a registered code
        {"until": _later(400)},  # fraud-investigation allows 365 days
        {"legal_basis": "tax-audit", "until": _later(200)},  # tax-audit allows 180
    ):
        refused = _request(w, [seq], None, **body)
        assert problem(refused, 422)["status"] == 422, body
    assert _request(w, [seq], legal_basis="tax-audit", until=_later(170)).status_code == 201
    assert not w.events(action="audit.defer")


def test_the_deferrals_own_events_stay_deferred_with_it_and_the_citizen_is_told_some_are(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.benefits)
    log = w.client.get("/v1/me/access-log", headers=w.me(odile)).json()
    assert log["deferred"] is False
    deferral_id = _request(w, [seq]).json()["id"]
    assert _decide(w, deferral_id, w.compliance).status_code == 200

    about = w.events(citizen_id=odile)
    recorded = [e for e in about if e["action"] == "audit.defer"]
    assert recorded and all(deferral_id in e["reason"] for e in recorded)
    visible = _seen(w, odile)
    assert not visible & {int(e["seq"]) for e in recorded}, "the deferral's own event tips the citizen off"
    # Neither the request nor its approval is an event about the citizen they could see.
    assert not {e["action"] for e in w.access_log(odile)} & {"audit.defer", "audit.defer-request", "citizens.lookup"}

    log = w.client.get("/v1/me/access-log", headers=w.me(odile)).json()
    assert log["deferred"] is True
    assert set(log) == {"entries", "next_after", "deferred"}, "the log says more than that some are deferred"
    export = w.client.get("/v1/me/export", headers=w.me(odile)).json()["bundle"]
    assert export["deferred_entries"] is True
    assert BASIS not in str(export) and deferral_id not in str(export)


def test_a_caseworker_may_ask_to_defer_the_agencys_app_events_and_an_approver_decides(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.app("benefits-office"))
    created = _request(w, [seq])
    assert created.status_code == 201, created.text
    rejected = _decide(w, created.json()["id"], w.compliance, "reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert seq in _seen(w, odile)
    # A rejected request frees its events for a new one.
    assert _request(w, [seq]).status_code == 201


def test_pending_active_and_ended_deferrals_are_listed_in_the_flags(world: World) -> None:
    w = world
    odile, seq = _looked_up(w, w.benefits)
    pending = _request(w, [seq]).json()["id"]
    w.client.get("/v1/citizens", params={"national_id": ODILE["national_id"]}, headers=w.benefits)
    second = int(w.events(citizen_id=odile, action="citizens.lookup")[-1]["seq"])
    active = _request(w, [second], until=_later(200)).json()["id"]
    assert _decide(w, active, w.compliance).status_code == 200

    flags = w.client.get("/v1/audit/flags", headers=w.compliance)
    assert flags.status_code == 200, flags.text
    by_rule = {f["rule"]: f for f in flags.json() if f["rule"].startswith("deferral-")}
    assert pending in by_rule["deferral-pending"]["detail"]
    assert active in by_rule["deferral-active"]["detail"]
    assert by_rule["deferral-pending"]["agency"] == "benefits-office"
    # An agency's compliance officer sees their agency's deferrals, nobody else's.
    tax_officer = w.token("compliance@tax-office", "compliance-officer", "tax-office")
    assert not [f for f in w.client.get("/v1/audit/flags", headers=tax_officer).json() if "deferral" in f["rule"]]
