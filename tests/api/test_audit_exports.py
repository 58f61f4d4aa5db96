"""Exports over HTTP (issue 19, finding 19): the citizen's bundle as CSV, and filtered audit exports for
compliance officers, JSON Lines signed exactly like the command line's, each export audited.
All data is fictitious.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_world import BARNABY, ODILE, World, open_world, problem
from vault.audit import export as audit_export
from vault.audit.export import EXPORT_FORMAT


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        w.vault.registry.assign("compliance@tax-office", "tax-office", "compliance-officer")
        yield w


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_citizen_gets_their_export_as_csv_by_query_or_accept_header(world: World) -> None:
    w = world
    odile = w.citizen(ODILE | {"health_notes": '=HYPERLINK("http://example.invalid") said the invented doctor'})
    w.citizen(BARNABY)
    assert w.client.get(f"/v1/citizens/{odile}?fields=given_name", headers=w.registrar).status_code == 200

    by_query = w.client.get("/v1/me/export", params={"format": "csv"}, headers=w.me(odile))
    by_accept = w.client.get("/v1/me/export", headers=w.me(odile) | {"Accept": "text/csv"})
    for response in (by_query, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
    rows = _rows(by_query.text)
    kinds = {r["kind"] for r in rows}
    assert {"export", "field", "access"} <= kinds
    fields = {r["name"]: r["value"] for r in rows if r["kind"] == "field"}
    assert fields["given_name"] == "Odile" and fields["national_id"] == ODILE["national_id"]
    # A cell a spreadsheet would run as a formula is neutralised.
    assert fields["health_notes"].startswith("'=HYPERLINK")
    reads = [r for r in rows if r["kind"] == "access" and r["action"] == "citizens.read"]
    assert reads and reads[0]["who"] == "registrar@civil-registry"
    assert BARNABY["given_name"] not in by_query.text

    # JSON stays the default, signed.
    default = w.client.get("/v1/me/export", headers=w.me(odile))
    assert default.headers["content-type"].startswith("application/json") and default.json()["jws"]
    problem(w.client.get("/v1/me/export", params={"format": "xml"}, headers=w.me(odile)), 422)


def test_a_compliance_officer_exports_filtered_events_as_json_lines_that_verify(world: World, tmp_path: Path) -> None:
    w = world
    odile = w.citizen(ODILE)
    for _ in range(3):
        w.client.get(f"/v1/citizens/{odile}?fields=given_name", headers=w.registrar)

    response = w.client.get(
        "/v1/audit/export", params={"format": "jsonl", "action": "citizens.read"}, headers=w.compliance
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    saved = tmp_path / "export.jsonl"
    saved.write_bytes(response.content)
    report = audit_export.verify_export(saved)
    assert report.ok, report.public()
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0]["format"] == EXPORT_FORMAT and lines[0]["filter"] == {"action": "citizens.read"}
    assert [e["action"] for e in lines[1:-1]] == ["citizens.read"] * 3
    # Altered after export: the file signature catches it.
    saved.write_bytes(response.content.replace(b'"citizens.read"}', b'"citizens.lookup"}', 1))
    assert not audit_export.verify_export(saved).ok

    recorded = w.events(action="audit.export")
    assert recorded and recorded[-1]["actor"] == "compliance@vault"
    assert "action=citizens.read" in recorded[-1]["reason"] and "jsonl" in recorded[-1]["reason"]
    assert recorded[-1]["citizen_id"] is None


def test_a_compliance_officer_exports_csv_and_an_agency_officer_only_their_agency(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    w.client.get("/v1/citizens", params={"national_id": ODILE["national_id"]}, headers=w.tax)
    w.client.get(f"/v1/citizens/{odile}?fields=given_name", headers=w.registrar)

    everything = w.client.get("/v1/audit/export", params={"format": "csv"}, headers=w.compliance)
    assert everything.status_code == 200 and everything.headers["content-type"].startswith("text/csv")
    assert {"tax-office", "civil-registry"} <= {r["agency"] for r in _rows(everything.text)}

    officer = w.token("compliance@tax-office", "compliance-officer", "tax-office")
    own = w.client.get("/v1/audit/export", params={"format": "csv"}, headers=officer)
    assert own.status_code == 200 and {r["agency"] for r in _rows(own.text)} == {"tax-office"}
    problem(w.client.get("/v1/audit/export", params={"agency": "civil-registry"}, headers=officer), 403)
    for headers in (w.tax, w.registrar, w.me(odile)):
        problem(w.client.get("/v1/audit/export", headers=headers), 403)
    problem(w.client.get("/v1/audit/export", params={"format": "xlsx"}, headers=w.compliance), 422)


def test_an_export_larger_than_the_bound_is_refused_and_nothing_is_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    monkeypatch.setattr(audit_export, "HTTP_MAX_EVENTS", 5)
    refused = w.client.get("/v1/audit/export", headers=w.compliance)
    problem(refused, 422)
    assert "narrow" in refused.json()["detail"]
    narrow = w.client.get("/v1/audit/export", params={"action": "agencies.create"}, headers=w.compliance)
    assert narrow.status_code == 200, narrow.text
