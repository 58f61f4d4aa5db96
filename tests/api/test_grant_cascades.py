"""Grants that lose their basis, and grants over many citizens.

Withdrawing consent, erasing the citizen, retiring the purpose and retiring the agency each revoke
the dependent grants at once (the next read is refused; the grant says why). A bulk grant pages
through its citizens exactly once, one audit event per citizen read. All data is fictitious.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api_world import BARNABY, ODILE, World, open_world, person, problem
from vault.grants.tables import grants


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _tax_grant(w: World, citizen: str) -> dict[str, Any]:
    grant = w.granted(w.tax, citizen_id=citizen, purpose="tax-assessment", fields=["given_name", "income"], max_uses=9)
    assert w.read(w.tax, grant["id"]).status_code == 200
    return grant


def _consent_grant(w: World, citizen: str) -> tuple[dict[str, Any], str]:
    given = w.consent(citizen, agency="benefits-office", purpose="benefit-eligibility")
    assert given.status_code == 201, given.text
    grant = w.granted(w.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["email"], max_uses=9)
    assert w.read(w.benefits, grant["id"]).status_code == 200
    return grant, str(given.json()["id"])


def _revoked_because(w: World, headers: dict[str, str], grant_id: str, why: str) -> None:
    refused = w.read(headers, grant_id)
    problem(refused, 403, "grant-revoked")
    event = w.refusal_event(refused)
    assert event["grant_id"] == grant_id
    # A refused read of a single-citizen grant is about that citizen: found when filtering by them.
    [granted] = [e for e in w.events(action="grants.request") if e["grant_id"] == grant_id]
    assert event["citizen_id"] is not None and event["citizen_id"] == granted["citizen_id"]
    shown = w.grant(headers, grant_id)
    assert (shown["status"], shown["status_reason"]) == ("revoked", why)


def test_withdrawing_consent_revokes_only_the_grants_that_rested_on_it(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    hers, consent = _consent_grant(w, odile)
    his, _ = _consent_grant(w, barnaby)
    tax = _tax_grant(w, odile)

    assert w.client.delete(f"/v1/me/consents/{consent}", headers=w.me(odile)).status_code == 200
    _revoked_because(w, w.benefits, hers["id"], "consent-withdrawn")
    assert w.read(w.benefits, his["id"]).status_code == 200, "another citizen's grant was revoked"
    assert w.read(w.tax, tax["id"]).status_code == 200, "a grant on a legal obligation was revoked"
    withdrawal = w.events(citizen_id=odile, action="consents.withdraw")
    assert [e["reason"] for e in withdrawal] == ["benefits-office; 1 grants revoked"]


def test_erasing_the_citizen_revokes_their_grants(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    tax = _tax_grant(w, odile)
    benefits, _ = _consent_grant(w, odile)
    others = _tax_grant(w, barnaby)

    erased = w.client.delete(f"/v1/citizens/{odile}", headers=w.registrar)
    assert erased.status_code == 200, erased.text
    _revoked_because(w, w.tax, tax["id"], "citizen-erased")
    _revoked_because(w, w.benefits, benefits["id"], "citizen-erased")
    assert w.read(w.tax, others["id"]).status_code == 200
    # A new grant for the erased citizen is not possible either.
    problem(w.ask(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"]), 404)


def test_retiring_a_purpose_revokes_its_grants_and_refuses_new_ones(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    tax = _tax_grant(w, odile)
    benefits, _ = _consent_grant(w, odile)

    retired = w.client.patch("/v1/purposes/tax-assessment", json={"status": "retired"}, headers=w.admin)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    _revoked_because(w, w.tax, tax["id"], "purpose-retired")
    assert w.read(w.benefits, benefits["id"]).status_code == 200, "a grant for another purpose was revoked"
    again = w.ask(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"])
    problem(again, 403, "purpose-retired")
    assert w.refusal_event(again)["reason"] == "purpose-retired"
    # Only the vault's admins retire purposes.
    refused = w.client.patch("/v1/purposes/benefit-eligibility", json={"status": "retired"}, headers=w.benefits)
    problem(refused, 403)


def test_retiring_an_agency_revokes_its_grants_for_good(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    tax = _tax_grant(w, odile)
    benefits, _ = _consent_grant(w, odile)

    retired = w.client.patch("/v1/agencies/tax-office", json={"status": "retired"}, headers=w.admin)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    # Its officers and apps are shut out at once, before any grant rule is consulted.
    for headers in (w.tax, w.app("tax-office")):
        assert w.read(headers, tax["id"]).status_code in (401, 403)
    with w.vault.data_engine.connect() as conn:
        row = conn.execute(select(grants.c.status, grants.c.status_reason).where(grants.c.id == tax["id"])).one()
    assert (row.status, row.status_reason) == ("revoked", "agency-retired")
    export = w.client.get("/v1/me/export", headers=w.me(odile)).json()["bundle"]
    mine = {g["id"]: g for g in export["grants"]}
    assert (mine[tax["id"]]["status"], mine[tax["id"]]["status_reason"]) == ("revoked", "agency-retired")
    assert mine[benefits["id"]]["status"] == "active"
    assert w.read(w.benefits, benefits["id"]).status_code == 200

    # Reactivating the agency does not bring the grant back.
    back = w.client.patch("/v1/agencies/tax-office", json={"status": "active"}, headers=w.admin)
    assert back.status_code == 200
    _revoked_because(w, w.tax, tax["id"], "agency-retired")


# -- bulk ------------------------------------------------------------------------------------------


def test_a_bulk_grant_pages_through_every_citizen_exactly_once(world: World) -> None:
    w = world
    crowd = {w.citizen(person(i)): person(i) for i in range(25)}
    grant = w.granted(
        w.tax, citizen_ids=list(crowd), purpose="tax-assessment", fields=["income", "given_name"], max_uses=3
    )
    assert grant["citizens"] == 25

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"after": after} if after else {})
        response = w.read(w.tax, grant["id"], **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["records"]) <= 10
        for record in page["records"]:
            expected = crowd[record["citizen_id"]]
            assert record["fields"] == {"given_name": expected["given_name"], "income": expected["income"]}
        seen += [r["citizen_id"] for r in page["records"]]
        after = page["next_after"]
        if after is None:
            break
        assert after == page["records"][-1]["citizen_id"]
    assert pages == 3 and sorted(seen) == sorted(crowd) and len(seen) == len(set(seen)) == 25
    assert w.grant(w.tax, grant["id"])["uses"] == 3

    reads = [e for e in w.events(action="grants.read", outcome="allowed") if e["grant_id"] == grant["id"]]
    assert sorted(e["citizen_id"] for e in reads) == sorted(crowd)
    assert {(e["purpose"], tuple(e["fields"])) for e in reads} == {("tax-assessment", ("given_name", "income"))}


def test_a_bulk_request_on_consent_is_refused_when_anyone_has_not_consented(world: World) -> None:
    w = world
    people = [w.citizen(person(i)) for i in range(3)]
    assert w.consent(people[0], agency="benefits-office", purpose="benefit-eligibility").status_code == 201

    refused = w.ask(w.benefits, citizen_ids=people, purpose="benefit-eligibility", fields=["given_name"])
    doc = problem(refused, 403, "consent-required")
    assert "grant_id" not in doc, "a bulk request must not leave a pending grant behind"
    assert "2 of 3" in doc["detail"]
    assert w.refusal_event(refused)["reason"] == "consent-required"
    for citizen in people:
        assert w.client.get("/v1/me/grant-requests", headers=w.me(citizen)).json() == []
        assert not w.vault.grants.about(citizen)

    # When everyone has consented the same request is granted.
    for citizen in people[1:]:
        assert w.consent(citizen, agency="benefits-office", purpose="benefit-eligibility").status_code == 201
    grant = w.granted(w.benefits, citizen_ids=people, purpose="benefit-eligibility", fields=["given_name"])
    names = sorted(r["fields"]["given_name"] for r in w.read(w.benefits, grant["id"]).json()["records"])
    assert names == ["Crowd000", "Crowd001", "Crowd002"]
