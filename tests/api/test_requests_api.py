"""Rights requests over HTTP: the citizen asks, the routed agency decides, the citizen sees the
outcome; every refusal a precise problem document with a reason, audited. People are invented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_world import BARNABY, ODILE, Headers, World, open_world, problem
from vault.registry import OPERATOR


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def ask(w: World, citizen: str, **body: Any) -> dict[str, Any]:
    response = w.client.post("/v1/me/requests", json=body, headers=w.me(citizen))
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def step(w: World, headers: Headers, request_id: str, action: str, **body: Any) -> dict[str, Any]:
    response = w.client.post(f"/v1/requests/{request_id}/{action}", json=body or None, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_correction_is_routed_to_the_source_agency_which_applies_it(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    made = ask(w, odile, kind="rectification", fields={"address": "4 Marmalade Row, Nowhereville"}, message="I moved")
    assert (made["status"], made["agency"], made["detail"]) == ("verified", "civil-registry", {"fields": ["address"]})
    assert made["due_at"] > made["submitted_at"] and not made["overdue"]
    assert [h["status"] for h in made["history"]] == ["submitted", "verified"]
    assert "Marmalade" not in str(made), "the proposed value is shown only to the officer deciding"

    [queued] = w.client.get("/v1/requests", params={"status": "open"}, headers=w.registrar).json()
    assert queued["id"] == made["id"]
    assert w.client.get("/v1/requests", headers=w.tax).json() == [], "another agency's queue holds it not"
    problem(w.client.get(f"/v1/requests/{made['id']}", headers=w.tax), 404)

    proposed = w.client.get(f"/v1/requests/{made['id']}/proposed", headers=w.registrar)
    assert proposed.json() == {"fields": {"address": "4 Marmalade Row, Nowhereville"}}
    done = step(w, w.registrar, made["id"], "accept")
    assert done["status"] == "complete" and done["detail"]["outcome"] == "corrected"
    profile = w.vault.profiles.read(uuid.UUID(odile), ["address"])
    assert profile.values["address"] == "4 Marmalade Row, Nowhereville"
    assert profile.provenance["address"].source_agency == "civil-registry"

    mine = w.client.get(f"/v1/me/requests/{made['id']}", headers=w.me(odile)).json()
    assert mine["status"] == "complete" and mine["submitted_at"] <= mine["updated_at"] < mine["due_at"]
    assert [m["text"] for m in mine["messages"]] == ["I moved"]
    actions = {e["action"] for e in w.events(citizen_id=odile)}
    assert {"requests.submit", "requests.read-proposed", "citizens.correct", "requests.accept"} <= actions


def test_a_refused_correction_tells_the_citizen_why(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    made = ask(w, odile, kind="rectification", fields={"given_name": "Odette"})
    step(w, w.registrar, made["id"], "refuse", reason="The birth record says Odile.")
    mine = w.client.get(f"/v1/me/requests/{made['id']}", headers=w.me(odile)).json()
    assert mine["status"] == "denied"
    assert mine["messages"][-1] == {
        "at": mine["updated_at"],
        "author_role": "officer",
        "text": "The birth record says Odile.",
    }
    assert w.vault.profiles.read(uuid.UUID(odile), ["given_name"]).values["given_name"] == "Odile"
    problem(w.client.post(f"/v1/requests/{made['id']}/accept", headers=w.registrar), 409, "invalid-transition")


def test_bad_input_is_refused_precisely_and_nothing_is_recorded(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    me = w.me(odile)
    unknown = w.client.post("/v1/me/requests", json={"kind": "rectification", "fields": {"shoe_size": "9"}}, headers=me)
    assert problem(unknown, 422)["errors"] == {"shoe_size": "unknown field"}
    bad = w.client.post("/v1/me/requests", json={"kind": "rectification", "fields": {"email": "nope"}}, headers=me)
    problem(bad, 422)
    problem(w.client.post("/v1/me/requests", json={"kind": "erasure", "purposes": ["tax-assessment"]}, headers=me), 422)
    problem(w.client.post("/v1/me/requests", json={"kind": "restriction", "purposes": ["no-such"]}, headers=me), 422)
    problem(w.client.post("/v1/me/requests", json={"kind": "shredding"}, headers=me), 422)
    assert w.client.get("/v1/me/requests", headers=me).json() == []

    first = ask(w, odile, kind="rectification", fields={"phone": "+999 555 0199"})
    again = w.client.post(
        "/v1/me/requests", json={"kind": "rectification", "fields": {"phone": "+999 555 0198"}}, headers=me
    )
    problem(again, 409, "duplicate-open-request")
    assert w.refusal_event(again)["reason"] == "duplicate-open-request"

    # Another citizen's request id: 404, exactly as an absent one, on every citizen route.
    theirs = w.me(barnaby)
    absent = "00000000-0000-4000-8000-000000000000"
    for rid in (first["id"], absent):
        problem(w.client.get(f"/v1/me/requests/{rid}", headers=theirs), 404)
        problem(w.client.post(f"/v1/me/requests/{rid}/withdraw", headers=theirs), 404)
    assert w.client.get(f"/v1/me/requests/{first['id']}", headers=me).json()["status"] == "verified"
    problem(w.client.get("/v1/requests", headers=me), 403)


def test_an_erasure_keeps_the_legally_held_fields_and_says_why(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    preview = w.client.get("/v1/me/requests/erasure-preview", headers=w.me(odile)).json()
    assert set(preview["kept"]) == {"given_name", "family_name", "date_of_birth"}
    assert "email" in preview["erased"] and preview["blocked_by"] == []
    made = ask(w, odile, kind="erasure")
    assert made["agency"] == "civil-registry" and made["detail"]["kept"] == preview["kept"]
    step(w, w.registrar, made["id"], "approve")
    problem(w.client.post(f"/v1/requests/{made['id']}/complete", headers=w.caseworker("civil-registry")), 403)
    done = step(w, w.registrar, made["id"], "complete")
    assert done["status"] == "complete"
    assert done["detail"]["outcome"]["held"] == preview["kept"]
    assert set(done["detail"]["outcome"]["destroyed"]) == set(preview["erased"])
    assert [h["status"] for h in done["history"]][-3:] == ["approved", "processing", "complete"]
    profile = w.vault.profiles.read(uuid.UUID(odile))
    assert profile.status == "erased" and set(profile.values) == set(preview["kept"])


def test_an_erasure_is_blocked_while_a_legal_obligation_is_processed(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"])
    assert w.client.get("/v1/me/requests/erasure-preview", headers=w.me(odile)).json()["blocked_by"] == [
        "tax-assessment"
    ]
    refused = w.client.post("/v1/me/requests", json={"kind": "erasure"}, headers=w.me(odile))
    problem(refused, 403, "erasure-blocked-legal-obligation")
    assert w.refusal_event(refused)["reason"] == "erasure-blocked-legal-obligation"
    assert w.client.get("/v1/me/requests", headers=w.me(odile)).json() == []


def test_a_restriction_stops_grant_reads_for_its_purpose_until_lifted(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    grant = w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"], max_uses=10)
    made = ask(w, odile, kind="restriction", purposes=["tax-assessment"], message="I contest my income figure")
    assert made["agency"] == "tax-office", "routed to the agency that uses the purpose"
    problem(w.client.post(f"/v1/requests/{made['id']}/approve", headers=w.compliance), 403)  # oversee only
    step(w, w.tax, made["id"], "approve")
    step(w, w.tax, made["id"], "complete")
    refused = w.read(w.tax, grant["id"])
    problem(refused, 403, "processing-restricted")
    assert w.refusal_event(refused)["reason"] == "processing-restricted"
    again = w.client.post(
        "/v1/me/requests", json={"kind": "restriction", "purposes": ["tax-assessment"]}, headers=w.me(odile)
    )
    problem(again, 409, "already-restricted")

    step(w, w.tax, made["id"], "lift")
    assert w.read(w.tax, grant["id"]).status_code == 200


def test_objection_depends_on_the_lawful_basis(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    for purpose, reason in (
        ("tax-assessment", "objection-legal-obligation"),
        ("benefit-eligibility", "objection-consent-basis"),
    ):
        response = w.client.post(
            "/v1/me/requests", json={"kind": "objection", "purposes": [purpose]}, headers=w.me(odile)
        )
        problem(response, 403, reason)
    w.vault.purposes.create(
        "street-lighting-survey",
        "Plan street lighting",
        ["contact"],
        "public-task",
        "Lighting Act (fictitious)",
        30,
        ["tax-office"],
        actor=OPERATOR,
    )
    made = ask(w, odile, kind="objection", purposes=["street-lighting-survey"])
    step(w, w.tax, made["id"], "approve")
    done = step(w, w.tax, made["id"], "complete")
    assert done["status"] == "complete"
    lifted = w.client.post(f"/v1/me/requests/{made['id']}/withdraw", headers=w.me(odile))
    assert lifted.json()["history"][-1]["event"] == "lifted"


def test_an_access_request_is_answered_by_the_export_and_extensions_are_bounded(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    made = ask(w, odile, kind="access")
    assert made["status"] == "complete" and made["detail"] == {"answer": "export"}
    held = ask(w, odile, kind="restriction", purposes=["emergency-care"])
    once = step(w, w.clinic, held["id"], "extend", months=2, reason="Many requests this month")
    assert once["extensions"] == 2 and once["due_at"] > held["due_at"]
    assert once["messages"][-1]["text"].endswith("Many requests this month")
    problem(
        w.client.post(f"/v1/requests/{held['id']}/extend", json={"months": 1, "reason": "again"}, headers=w.clinic),
        409,
        "extension-limit",
    )
    assigned = step(w, w.clinic, held["id"], "assign", assignee="caseworker@city-clinic")
    assert assigned["assignee"] == "caseworker@city-clinic"
    assert w.client.get(f"/v1/requests/{held['id']}", headers=w.compliance).json()["agency"] == "city-clinic"
    withdrawn = w.client.post(f"/v1/me/requests/{held['id']}/withdraw", headers=w.me(odile)).json()
    assert withdrawn["status"] == "withdrawn"
