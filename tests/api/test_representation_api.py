"""Acting for someone else over HTTP (issue 17): a parent views, exports and consents for a minor
child with ``X-Acting-For``; the access stops at the child's majority; a mandate limited to view
cannot withdraw a consent; refusals are precise, audited, and reveal nothing. People are invented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_world import Headers, World, open_world, problem
from tests.support.representation_helpers import child_fields, friend_fields, parent_fields

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _for(w: World, representative: str, represented: str) -> Headers:
    return w.me(representative) | {"X-Acting-For": represented}


def _parent(w: World, parent: str, child: str, **body: Any) -> dict[str, Any]:
    response = w.client.post(
        "/v1/representations",
        json={"kind": "parent", "represented_id": child, "representative_id": parent, **body},
        headers=w.registrar,
    )
    assert response.status_code == 201, response.text
    relation: dict[str, Any] = response.json()
    return relation


def _mandate(w: World, giver: str, national_id: str, scope: list[str], **body: Any) -> dict[str, Any]:
    response = w.client.post(
        "/v1/me/representations", json={"national_id": national_id, "scope": scope, **body}, headers=w.me(giver)
    )
    assert response.status_code == 201, response.text
    relation: dict[str, Any] = response.json()
    return relation


def test_parent_views_exports_and_consents_for_a_child_and_the_child_sees_it(world: World) -> None:
    w = world
    parent, child = w.citizen(parent_fields()), w.citizen(child_fields())
    relation = _parent(w, parent, child)
    assert (relation["kind"], relation["ends_at_majority"], relation["valid_until"]) == ("parent", True, None)

    profile = w.client.get("/v1/me", headers=_for(w, parent, child))
    assert profile.status_code == 200 and profile.json()["id"] == child
    assert profile.json()["fields"]["given_name"] == "Tobias"
    export = w.client.get("/v1/me/export", headers=_for(w, parent, child))
    assert export.status_code == 200 and export.json()["bundle"]["citizen_id"] == child
    consent = w.client.post("/v1/me/consents", json=BENEFITS, headers=_for(w, parent, child))
    assert consent.status_code == 201 and consent.json()["citizen_id"] == child, consent.text

    # Audited with both identities: the parent's subject, role representative, the relation named.
    mine = [e for e in w.events(citizen_id=child) if e["actor"] == parent and e["outcome"] == "allowed"]
    assert {e["action"] for e in mine} >= {"me.read", "me.export", "consents.give"}
    assert {(e["role"], e["agency"]) for e in mine} == {("representative", f"parent:{relation['id']}")}

    said = [e["said"] for e in w.access_log(child) if e["said"]]
    assert "Your parent Perpetua Quillfeather viewed your profile" in said
    assert "Your parent Perpetua Quillfeather downloaded all your data" in said
    assert "Your parent Perpetua Quillfeather gave a consent for you" in said
    # The parent's own view is unchanged by acting: /v1/me without the header is the parent.
    assert w.client.get("/v1/me", headers=w.me(parent)).json()["id"] == parent


def test_a_minors_own_consent_is_refused_where_a_parent_must_give_it(world: World) -> None:
    w = world
    child = w.citizen(child_fields())
    refused = w.client.post("/v1/me/consents", json=BENEFITS, headers=w.me(child))
    problem(refused, 403, "parent-consent-required")
    assert w.client.get("/v1/me/consents", headers=w.me(child)).json() == []  # nothing half-written
    event = w.refusal_event(refused)
    assert (event["action"], event["citizen_id"]) == ("consents.give", child)
    # An adult's own consent is unaffected.
    adult = w.citizen(friend_fields())
    assert w.client.post("/v1/me/consents", json=BENEFITS, headers=w.me(adult)).status_code == 201


def test_a_parents_access_stops_at_the_childs_majority(world: World) -> None:
    w = world
    parent, child = w.citizen(parent_fields()), w.citizen(child_fields(age=17))
    _parent(w, parent, child)
    assert w.client.get("/v1/me", headers=_for(w, parent, child)).status_code == 200
    w.vault.representation.clock = lambda: datetime.now(UTC) + timedelta(days=366)
    refused = w.client.get("/v1/me", headers=_for(w, parent, child))
    problem(refused, 403, "child-of-age")
    assert w.refusal_event(refused)["citizen_id"] == child


def test_a_registrar_cannot_record_a_parent_of_an_adult(world: World) -> None:
    w = world
    parent, adult = w.citizen(parent_fields()), w.citizen(friend_fields())
    response = w.client.post(
        "/v1/representations",
        json={"kind": "parent", "represented_id": adult, "representative_id": parent},
        headers=w.registrar,
    )
    problem(response, 403, "not-a-minor")
    assert w.client.get("/v1/me/representations", headers=w.me(adult)).json()["representing_me"] == []


def test_a_view_only_mandate_cannot_withdraw_a_consent(world: World) -> None:
    w = world
    giver, holder = w.citizen(parent_fields()), w.citizen(friend_fields())
    consent = w.client.post("/v1/me/consents", json=BENEFITS, headers=w.me(giver)).json()
    _mandate(w, giver, "971-000-003", ["view"])
    assert w.client.get("/v1/me", headers=_for(w, holder, giver)).status_code == 200
    refused = w.client.delete(f"/v1/me/consents/{consent['id']}", headers=_for(w, holder, giver))
    problem(refused, 403, "outside-scope")
    assert w.client.get("/v1/me/consents", headers=w.me(giver)).json()[0]["status"] == "active"
    event = w.refusal_event(refused)
    assert (event["action"], event["actor"], event["citizen_id"]) == ("representation.act", holder, giver)
    problem(w.client.get("/v1/me/export", headers=_for(w, holder, giver)), 403, "outside-scope")


def test_a_representative_outside_the_dates_is_refused(world: World) -> None:
    w = world
    giver, holder = w.citizen(parent_fields()), w.citizen(friend_fields())
    start = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    end = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    _mandate(w, giver, "971-000-003", ["view"], valid_from=start, valid_until=end)
    problem(w.client.get("/v1/me", headers=_for(w, holder, giver)), 403, "not-yet-valid")
    w.vault.representation.clock = lambda: datetime.now(UTC) + timedelta(days=15)
    assert w.client.get("/v1/me", headers=_for(w, holder, giver)).status_code == 200
    w.vault.representation.clock = lambda: datetime.now(UTC) + timedelta(days=21)
    refused = w.client.get("/v1/me", headers=_for(w, holder, giver))
    problem(refused, 403, "representation-ended")
    assert w.refusal_event(refused)["action"] == "representation.act"


def test_a_mandate_is_given_and_withdrawn_by_the_citizen_only(world: World) -> None:
    w = world
    giver, holder = w.citizen(parent_fields()), w.citizen(friend_fields())
    relation = _mandate(w, giver, "971-000-003", ["view", "consents"])
    assert relation["representative_id"] == holder and relation["represented_id"] == giver
    # The holder cannot give a mandate for the giver (acting), nor withdraw theirs.
    given_for = w.client.post(
        "/v1/me/representations", json={"national_id": "971-000-001", "scope": ["view"]}, headers=_for(w, holder, giver)
    )
    problem(given_for, 403, "not-delegable")
    assert w.refusal_event(given_for)["action"] == "me-representations.create"
    problem(w.client.delete(f"/v1/me/representations/{relation['id']}", headers=w.me(holder)), 404)
    # A registrar cannot end a mandate; the giver withdraws it and the access stops at once.
    problem(
        w.client.delete(f"/v1/representations/{relation['id']}", headers=w.registrar), 403, "mandate-by-citizen-only"
    )
    ended = w.client.delete(f"/v1/me/representations/{relation['id']}", headers=w.me(giver))
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    problem(w.client.get("/v1/me", headers=_for(w, holder, giver)), 403, "no-representation")
    lists = w.client.get("/v1/me/representations", headers=w.me(holder)).json()
    assert [r["id"] for r in lists["i_represent"]] == [relation["id"]]


def test_acting_for_someone_without_a_relation_reveals_nothing(world: World) -> None:
    w = world
    stranger, someone = w.citizen(parent_fields()), w.citizen(friend_fields())
    nobody = "00000000-0000-4000-8000-000000000000"
    known = w.client.get("/v1/me", headers=_for(w, stranger, someone))
    unknown = w.client.get("/v1/me", headers=_for(w, stranger, nobody))
    a, b = problem(known, 403, "no-representation"), problem(unknown, 403, "no-representation")
    assert a["detail"] == b["detail"]
    assert w.refusal_event(known)["citizen_id"] == someone
    problem(w.client.get("/v1/me", headers=_for(w, stranger, "not-an-id")), 403, "no-representation")
    # Officers cannot act for anyone, whatever the header says.
    problem(
        w.client.get("/v1/citizens", params={"national_id": "1"}, headers=w.registrar | {"X-Acting-For": someone}),
        403,
        "not-delegable",
    )


def test_mandate_input_is_bounded_and_precise(world: World) -> None:
    w = world
    giver = w.citizen(parent_fields())
    me = w.me(giver)
    problem(w.client.post("/v1/me/representations", json={"national_id": "x", "scope": ["fly"]}, headers=me), 422)
    problem(w.client.post("/v1/me/representations", json={"national_id": "x", "scope": []}, headers=me), 422)
    unknown = w.client.post(
        "/v1/me/representations", json={"national_id": "971-999-999", "scope": ["view"]}, headers=me
    )
    assert problem(unknown, 422)["errors"] == {"national_id": "no one can receive a mandate under this national id"}
    own = w.client.post("/v1/me/representations", json={"national_id": "971-000-001", "scope": ["view"]}, headers=me)
    problem(own, 403, "self-representation")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    w.citizen(friend_fields())
    ended = {"national_id": "971-000-003", "scope": ["view"], "valid_until": past}
    problem(w.client.post("/v1/me/representations", json=ended, headers=me), 422)
    _mandate(w, giver, "971-000-003", ["view"])
    again = w.client.post("/v1/me/representations", json={"national_id": "971-000-003", "scope": ["view"]}, headers=me)
    problem(again, 409)


def test_a_minor_cannot_approve_a_request_for_consent_but_their_parent_can(world: World) -> None:
    w = world
    parent, child = w.citizen(parent_fields()), w.citizen(child_fields())
    _parent(w, parent, child)
    asked = w.ask(w.benefits, citizen_id=child, purpose="benefit-eligibility", fields=["given_name"])
    grant_id = problem(asked, 403, "consent-required")["grant_id"]
    alone = w.client.post(f"/v1/me/grant-requests/{grant_id}/approve", json={}, headers=w.me(child))
    problem(alone, 403, "parent-consent-required")
    assert w.grant(w.benefits, grant_id)["status"] == "pending"  # nothing half-done
    approved = w.client.post(f"/v1/me/grant-requests/{grant_id}/approve", json={}, headers=_for(w, parent, child))
    assert approved.status_code == 200, approved.text
    assert w.grant(w.benefits, grant_id)["status"] == "active"
