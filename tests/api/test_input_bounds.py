"""Crafted parameters and bodies are refused at the schema with a problem document, never a 500
(issue 19, findings 2 and 13): sequence numbers beyond 64 bits, instants that overflow when
converted to UTC, lone surrogates and control characters in text, and unvalidated names are never
echoed back. All people and agencies are fictitious.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from tests.support.api_world import ODILE, World, open_world, problem

BEYOND_64_BITS = 2**63  # one past the largest sequence number a BIGINT column holds
EARLIEST_EDGE = "0001-01-01T00:00:00+14:00"  # year 0 in UTC
LATEST_EDGE = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _raw_json(w: World, method: str, path: str, body: Any, headers: dict[str, str]) -> Response:
    """Send ``body`` as ASCII JSON (``\\ud800`` escapes survive; httpx's own encoder would refuse them)."""
    content = json.dumps(body).encode("ascii")
    response: Response = w.client.request(
        method, path, content=content, headers={**headers, "content-type": "application/json"}
    )
    return response


def test_sequence_cursors_beyond_64_bits_are_refused_not_crashed(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    for path, headers in (("/v1/me/access-log", w.me(odile)), ("/v1/audit/events", w.compliance)):
        for after in (BEYOND_64_BITS, -1, 10**30):
            problem(w.client.get(path, params={"after": after}, headers=headers), 422)
        assert w.client.get(path, params={"after": 2**63 - 1}, headers=headers).status_code == 200


def test_review_windows_at_the_edges_of_time_are_refused_not_crashed(world: World) -> None:
    w = world
    for path in ("/v1/audit/events", "/v1/audit/report", "/v1/audit/flags"):
        for params in ({"since": EARLIEST_EDGE}, {"until": LATEST_EDGE}, {"since": "2024-01-01T00:00:00"}):
            doc = problem(w.client.get(path, params=params, headers=w.compliance), 422)
            assert doc["errors"], doc
        ok = {"since": "2024-01-01T00:00:00Z", "until": "2024-02-01T00:00:00+14:00"}
        assert w.client.get(path, params=ok, headers=w.compliance).status_code == 200


def test_a_consent_expiry_that_overflows_utc_is_refused(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    for expires in (LATEST_EDGE, EARLIEST_EDGE, "2030-01-01T00:00:00"):
        response = w.consent(odile, agency="benefits-office", purpose="benefit-eligibility", expires_at=expires)
        problem(response, 422)


def test_deferral_event_ids_beyond_64_bits_are_refused(world: World) -> None:
    w = world
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    for events in ([2**63], [2**64], [-1]):
        body = {"events": events, "legal_basis": "Invented Investigations Act s.1", "until": soon}
        doc = problem(w.client.post("/v1/audit/deferrals", json=body, headers=w.benefits), 422)
        assert doc["type"].endswith("/invalid-request"), doc
    body = {"events": [1], "legal_basis": "Invented Investigations Act s.1", "until": LATEST_EDGE}
    problem(w.client.post("/v1/audit/deferrals", json=body, headers=w.benefits), 422)


def test_a_lone_surrogate_in_a_profile_field_is_refused_with_a_problem(world: World) -> None:
    w = world
    created = _raw_json(w, "POST", "/v1/citizens", {"fields": {**ODILE, "given_name": "Od\ud800ile"}}, w.registrar)
    problem(created, 422)
    odile = w.citizen(ODILE)
    corrected = _raw_json(w, "PATCH", f"/v1/citizens/{odile}", {"fields": {"address": "\udfff"}}, w.registrar)
    problem(corrected, 422)


def test_control_characters_in_text_fields_are_refused(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    grant = {"citizen_id": odile, "purpose": "benefit-eligibility", "fields": ["income"], "case_ref": "case\x00-7"}
    problem(w.ask(w.benefits, **grant), 422)
    agency = {"code": "invented-bureau", "name": "Bureau\x1bof Inventions"}
    problem(w.client.post("/v1/agencies", json=agency, headers=w.admin), 422)
    for params in ({"agency": "tax\x00office"}, {"actor": "someone\x07"}):
        problem(w.client.get("/v1/audit/events", params=params, headers=w.compliance), 422)


def test_unknown_member_names_are_never_echoed(world: World) -> None:
    w = world
    markup = "<script>alert(1)</script>"
    unknown_member = w.client.post("/v1/citizens", json={"fields": ODILE, markup: 1}, headers=w.registrar)
    problem(unknown_member, 422)
    unknown_field = w.client.post("/v1/citizens", json={"fields": {**ODILE, markup: "x"}}, headers=w.registrar)
    problem(unknown_field, 422)
    bad_value = w.client.post("/v1/citizens", json={"fields": {markup: ["x"]}}, headers=w.registrar)
    problem(bad_value, 422)
    grant = {"citizen_id": w.citizen(ODILE), "purpose": "benefit-eligibility", "fields": [markup]}
    unknown_grant_field = w.ask(w.benefits, **grant)
    problem(unknown_grant_field, 422)
    for response in (unknown_member, unknown_field, bad_value, unknown_grant_field):
        assert "script" not in response.text, response.text


def _bounded(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether a parameter's schema limits its value (length, range, pattern, enumeration or format)."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        return all(_bounded(s, components) for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    if "enum" in schema or "const" in schema or kind == "boolean":
        return True
    if kind == "string":
        return "maxLength" in schema or "pattern" in schema or schema.get("format") in ("uuid", "date-time", "date")
    if kind in ("integer", "number"):
        return "minimum" in schema and "maximum" in schema
    return False


def test_every_path_and_query_parameter_is_bounded_in_the_schema(world: World) -> None:
    """The class of finding 2: a parameter without limits reaches the vault as whatever was sent."""
    document = world.client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    unbounded = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if not _bounded(parameter["schema"], components)
    ]
    assert unbounded == []


def test_a_client_id_path_parameter_is_bounded_on_every_client_route(world: World) -> None:
    w = world
    for method, suffix in (("POST", "/approve"), ("POST", "/secret"), ("DELETE", "")):
        for client_id in ("c" * 129, "cli%07x"):
            problem(w.client.request(method, f"/v1/clients/{client_id}{suffix}", headers=w.admin), 422)
