"""/v1/interactions and /v1/me/interactions (issue 15): a citizen files and rates, the receiving
agency works the item, another agency is refused, bad input gets a precise problem with a reason
and leaves nothing behind. Every person, number and address here is invented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.api_world import ODILE, World, open_world
from vault.interactions.facts import interaction_facts
from vault.interactions.tables import interactions

PROBLEM = "application/problem+json"
PHONE = "+1 212 555 0199"
EMAIL = "odile.fictional@example.org"
REQUEST = {
    "service_code": "housing-repair",
    "text": f"The heating in my flat has failed. Reach me on {PHONE} or {EMAIL}.",
    "attributes": {"urgency": "emergency"},
    "location": {"address": "4 Invented Row, Nowhereville", "lat": 45.01, "lon": 7.02},
}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def counts(w: World) -> tuple[int, int]:
    with w.vault.data_engine.connect() as conn:
        return (
            int(conn.scalar(select(func.count()).select_from(interactions)) or 0),
            int(conn.scalar(select(func.count()).select_from(interaction_facts)) or 0),
        )


def filed(w: World, citizen: str, **changes: Any) -> dict[str, Any]:
    response = w.client.post("/v1/me/interactions", json={**REQUEST, **changes}, headers=w.me(citizen))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_citizen_files_the_agency_works_it_and_the_citizen_rates_it(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    made = filed(w, odile)
    assert (made["agency"], made["status"], made["area"], made["linked"]) == (
        "benefits-office",
        "open",
        "south-west",
        True,
    )
    queue = w.client.get("/v1/interactions", params={"status": "open"}, headers=w.benefits).json()
    assert [i["id"] for i in queue["items"]] == [made["id"]] and "text" not in queue["items"][0]
    item = w.client.get(f"/v1/interactions/{made['id']}", headers=w.benefits).json()
    assert item["text"] == REQUEST["text"] and PHONE not in item["redacted_text"]
    assert item["contact"] is None and item["location"]["address"] == "4 Invented Row, Nowhereville"
    early = w.client.post(f"/v1/me/interactions/{made['id']}/rating", json={"rating": 5}, headers=w.me(odile))
    assert early.status_code == 409 and early.json()["reason"] == "not-resolved"
    for status in ("acknowledged", "in_progress", "resolved"):
        r = w.client.post(
            f"/v1/interactions/{made['id']}/status",
            json={"status": status, "note": f"{status} by us"},
            headers=w.benefits,
        )
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    r = w.client.post(f"/v1/interactions/{made['id']}/assign", json={"unit": "housing"}, headers=w.benefits)
    assert r.json()["unit"] == "housing"
    r = w.client.post(
        f"/v1/me/interactions/{made['id']}/rating", json={"rating": 4, "comment": "Fixed in a day"}, headers=w.me(odile)
    )
    assert r.status_code == 200 and r.json()["rating"] == 4
    mine = w.client.get(f"/v1/me/interactions/{made['id']}", headers=w.me(odile)).json()
    assert [h["note"] for h in mine["history"] if h["kind"] == "status"] == [
        "acknowledged by us",
        "in_progress by us",
        "resolved by us",
    ]
    assert mine["rating_comment"] == "Fixed in a day"
    assert w.client.get("/v1/me/interactions", headers=w.me(odile)).json()["total"] == 1
    closed = w.client.post(f"/v1/interactions/{made['id']}/status", json={"status": "closed"}, headers=w.benefits)
    assert closed.status_code == 200
    again = w.client.post(f"/v1/interactions/{made['id']}/status", json={"status": "resolved"}, headers=w.benefits)
    assert again.status_code == 409 and again.json()["reason"] == "invalid-transition"
    assert again.headers["content-type"] == PROBLEM


def test_reads_of_the_text_are_audited_for_the_citizen_to_see(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    made = filed(w, odile)
    w.client.get(f"/v1/interactions/{made['id']}", headers=w.benefits)
    reads = [e for e in w.events(action="interactions.read") if e["citizen_id"] == odile]
    assert len(reads) == 1 and reads[0]["agency"] == "benefits-office"
    assert f"interaction:{made['id']}" in reads[0]["fields"]
    assert PHONE not in str(reads)


def test_another_agency_is_refused_and_cannot_change_the_item(world: World) -> None:
    w = world
    made = filed(w, w.citizen(ODILE))
    read = w.client.get(f"/v1/interactions/{made['id']}", headers=w.tax)
    assert read.status_code == 403 and read.json()["reason"] == "other-agency"
    change = w.client.post(f"/v1/interactions/{made['id']}/status", json={"status": "resolved"}, headers=w.clinic)
    assert change.status_code == 403 and change.json()["reason"] == "other-agency"
    assert w.client.get("/v1/interactions", headers=w.tax).json()["total"] == 0
    assert w.client.get(f"/v1/interactions/{made['id']}", headers=w.benefits).json()["summary"]["status"] == "open"


def test_a_citizen_cannot_see_or_rate_another_citizens_item(world: World) -> None:
    w = world
    made = filed(w, w.citizen(ODILE))
    other = w.citizen({**ODILE, "national_id": "961-000-778", "email": "someone.else@example.org"})
    assert w.client.get(f"/v1/me/interactions/{made['id']}", headers=w.me(other)).status_code == 404
    assert (
        w.client.post(f"/v1/me/interactions/{made['id']}/rating", json={"rating": 1}, headers=w.me(other)).status_code
        == 404
    )
    assert w.client.get("/v1/interactions", headers=w.me(other)).status_code == 403


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"service_code": "no-such-service"}, 422, "unknown-service"),
        ({"attributes": {}}, 422, "missing-attributes"),
        ({"text": "x" * 4001}, 422, "text-too-long"),
        ({"attachment": "https://files.example.org/" + "a" * 3000}, 422, "attachment-too-long"),
        ({"location": None}, 422, "invalid-interaction"),
        ({"channel": "pigeon"}, 422, "invalid-interaction"),
    ],
)
def test_bad_input_is_a_precise_problem_and_nothing_is_written(
    world: World, changes: dict[str, Any], status: int, reason: str
) -> None:
    w = world
    r = w.client.post("/v1/me/interactions", json={**REQUEST, **changes}, headers=w.me(w.citizen(ODILE)))
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    assert r.json()["reason"] == reason
    assert counts(w) == (0, 0)


def test_an_officer_records_on_behalf_of_a_citizen_only_for_their_own_agency(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    body = {**REQUEST, "citizen_id": odile, "channel": "phone"}
    made = w.client.post("/v1/interactions", json=body, headers=w.benefits)
    assert made.status_code == 201 and made.json()["channel"] == "phone"
    assert w.client.get("/v1/me/interactions", headers=w.me(odile)).json()["total"] == 1
    other = w.client.post("/v1/interactions", json=body, headers=w.tax)
    assert other.status_code == 403 and other.json()["reason"] == "other-agency"
    unknown = w.client.post(
        "/v1/interactions", json={**body, "citizen_id": "00000000-0000-4000-8000-000000000000"}, headers=w.benefits
    )
    assert unknown.status_code == 404
    assert counts(w) == (1, 1)


def test_the_overdue_list_shows_items_past_their_service_level(world: World) -> None:
    w = world
    made = filed(w, w.citizen(ODILE))
    assert w.client.get("/v1/interactions", params={"overdue": "true"}, headers=w.benefits).json()["total"] == 0
    later = w.vault.interactions.now()
    w.vault.interactions._clock = lambda: later + timedelta(hours=25)
    page = w.client.get("/v1/interactions", params={"overdue": "true"}, headers=w.benefits).json()
    assert [i["id"] for i in page["items"]] == [made["id"]] and page["items"][0]["overdue"]
