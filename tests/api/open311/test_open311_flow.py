"""An Open311 client drives GeoReport v2 end to end (issue 15, Show): service list and definitions,
form-encoded creation with attribute[...] answers, tokens, lookup, search, paging and XML; every
JSON answer is checked against the spec's own JSON Schemas."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree as ET

from sqlalchemy import select

from tests.support.api_world import ODILE
from tests.support.open311_client import (
    TOKEN_MEMBERS,
    Open311World,
    conforms,
    is_error_list,
)
from vault.audit.log import Actor
from vault.interactions.tables import interactions

WORKS = Actor("caseworker@public-works", "caseworker", "public-works")


def test_a_client_lists_services_reads_their_definitions_files_a_request_and_follows_it(o: Open311World) -> None:
    services = conforms("services.json", o.get("services.json"))
    codes = [s["service_code"] for s in services]
    assert {"pothole", "streetlight", "missed-collection"} <= set(codes)
    for service in services:
        if service["metadata"]:
            definition = conforms("service-definition.json", o.get(f"services/{service['service_code']}.json"))
            assert definition["service_code"] == service["service_code"] and definition["attributes"]
    pothole = conforms("service-definition.json", o.get("services/pothole.json"))
    size = next(a for a in pothole["attributes"] if a["code"] == "size")
    assert size["required"] is True and size["datatype"] == "singlevaluelist" and size["values"]

    response = o.post(
        [
            ("api_key", o.api_key),
            ("service_code", "pothole"),
            ("lat", "45.021387"),
            ("long", "7.101249"),
            ("address_string", ""),
            ("description", "A deep hole next to the bus stop."),
            ("attribute[size]", "large"),
            ("attribute[on_cycle_path]", "no"),
            ("device_id", "7A2F-TEST-DEVICE"),
        ]
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert len(created) == 1 and created[0]["service_request_id"] and created[0]["service_notice"]
    sid, token = created[0]["service_request_id"], created[0]["token"]

    resolved = o.get(f"tokens/{token}.json")
    assert resolved.status_code == 200 and resolved.json() == [{"token": token, "service_request_id": sid}]
    assert set(resolved.json()[0]) == TOKEN_MEMBERS

    [item] = conforms("requests.json", o.get(f"requests/{sid}.json"))
    assert (item["service_request_id"], item["status"], item["service_code"]) == (sid, "open", "pothole")
    assert item["agency_responsible"] == "public-works" and item["expected_datetime"]
    assert item["status_description"] == "Received, not yet acknowledged"

    works = o.w.vault.interactions
    works.change_status(WORKS, sid, "acknowledged")
    works.change_status(WORKS, sid, "in_progress", note="A crew is booked for Tuesday.")
    [item] = conforms("requests.json", o.get(f"requests/{sid}.json"))
    assert item["status"] == "open" and item["status_description"] == "In progress"
    assert item["status_notes"] == "In progress. A crew is booked for Tuesday."
    works.change_status(WORKS, sid, "resolved", note="Filled.")
    [item] = conforms("requests.json", o.get(f"requests/{sid}.json"))
    assert item["status"] == "closed" and item["status_description"] == "Resolved"
    assert item["expected_datetime"] is None and item["updated_datetime"] >= item["requested_datetime"]

    closed = conforms("requests.json", o.get("requests.json", status="closed"))
    assert [r["service_request_id"] for r in closed] == [sid]
    assert conforms("requests.json", o.get("requests.json", status="open")) == []
    both = conforms("requests.json", o.get("requests.json", status="open,closed", service_code="pothole"))
    assert [r["service_request_id"] for r in both] == [sid]


def test_paging_returns_every_request_once_newest_first(o: Open311World) -> None:
    ids = [o.file(description=f"Hole number {n} on the ring road.") for n in range(5)]
    pages = [conforms("requests.json", o.get("requests.json", page=str(p), page_size="2")) for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    seen = [r["service_request_id"] for p in pages for r in p]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    stamps = [r["requested_datetime"] for p in pages for r in p]
    assert stamps == sorted(stamps, reverse=True)
    default = conforms("requests.json", o.get("requests.json"))
    assert len(default) == 5


def test_search_by_ids_service_and_dates(o: Open311World) -> None:
    first = o.file()
    blank = ("attribute[pole_number]", "")  # an unanswered optional question, as forms send it
    second = o.file(blank, service_code="streetlight")
    listed = conforms("requests.json", o.get("requests.json", service_request_id=f"{first},{second}"))
    assert {r["service_request_id"] for r in listed} == {first, second}
    lights = conforms("requests.json", o.get("requests.json", service_code="streetlight"))
    assert [r["service_request_id"] for r in lights] == [second]
    now = o.w.vault.interactions.now()
    window = {"start_date": (now - timedelta(days=1)).isoformat(), "end_date": (now + timedelta(days=1)).isoformat()}
    dated = o.get("requests.json", start_date=window["start_date"], end_date=window["end_date"])
    assert len(conforms("requests.json", dated)) == 2
    past = o.get("requests.json", start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z")
    assert conforms("requests.json", past) == []


def test_a_citizen_token_links_the_request_and_an_email_alone_does_not(o: Open311World) -> None:
    odile = o.w.citizen(ODILE)
    anonymous = o.file(email=str(ODILE["email"]), first_name="Odile", last_name="Quibblethorpe")
    linked = o.file(headers=o.w.me(odile))
    with o.w.vault.data_engine.connect() as conn:
        owners = {row[0]: row[1] for row in conn.execute(select(interactions.c.id, interactions.c.citizen_id))}
    assert owners[anonymous] is None
    assert owners[linked] == odile
    mine, _ = o.w.vault.interactions.mine(odile)
    assert [s.id for s in mine] == [linked]
    # Both are in the public feed, neither says whose it is.
    feed = conforms("requests.json", o.get("requests.json"))
    assert {r["service_request_id"] for r in feed} == {anonymous, linked}
    assert odile not in str(feed)


def test_a_token_that_proves_no_citizen_is_refused_not_ignored(o: Open311World) -> None:
    before = o.stored()
    forged = o.post(o.form(), {"Authorization": "Bearer not.a.token"})
    assert "token refused" in is_error_list(forged, 401)
    officer = o.post(o.form(), o.w.tax)
    assert "citizen-only" in is_error_list(officer, 403)
    assert o.stored() == before


def test_xml_answers_carry_the_same_content(o: Open311World) -> None:
    sid = o.file()
    services = ET.fromstring(o.get("services.xml").content)
    assert services.tag == "services" and services.find("service/service_code") is not None
    definition = ET.fromstring(o.get("services/pothole.xml").content)
    assert definition.findtext("attributes/attribute/code") == "size"
    assert definition.find("attributes/attribute/values/value/key") is not None
    requests = ET.fromstring(o.get(f"requests/{sid}.xml").content)
    assert requests.tag == "service_requests" and requests.findtext("request/service_request_id") == sid
    created = o.post(
        [
            ("api_key", o.api_key),
            ("service_code", "pothole"),
            ("lat", "45.02"),
            ("long", "7.1"),
            ("description", "Another hole."),
            ("attribute[size]", "small"),
        ],
        fmt="xml",
    )
    assert created.headers["content-type"].startswith("application/xml")
    assert ET.fromstring(created.content).findtext("request/token")
    refused = o.get("requests/00000000-0000-4000-8000-000000000000.xml")
    assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/xml")
    error = ET.fromstring(refused.content)
    assert error.tag == "errors" and error.findtext("error/code") == "404"
