"""/v1/insights: analysts get noisy aggregates as JSON, CSV and chart series, within their budget;
every refusal is a precise problem, every query an audit event without values (issue 15)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_world import Headers, World, open_world, problem
from tests.support.insights_helpers import facts, fill
from vault.registry import OPERATOR

WINDOW = {"from": "2026-03-01", "to": "2026-05-31"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        w.vault.registry.assign("analyst@vault", "vault", "analyst", actor=OPERATOR)
        fill(w.vault.data_engine, facts(3000))
        w.client.app.state.insights.refresh(full=True)  # type: ignore[attr-defined]  # as the server's Refresher would
        yield w


def analyst(w: World) -> Headers:
    return w.token("analyst@vault", "analyst", "vault")


def test_summary_releases_noisy_rows_with_cost_and_budget(world: World) -> None:
    w = world
    params = {"by": "agency,channel", "period": "month", **WINDOW}
    r = w.client.get("/v1/insights/summary", params=params, headers=analyst(w))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["epsilon_spent"] == pytest.approx(1.0)
    assert body["budget"]["epsilon_remaining"] == pytest.approx(9.0)
    assert body["columns"][:4] == ["agency", "channel", "period", "count"]
    assert {row["period"] for row in body["rows"]} <= {"2026-03", "2026-04", "2026-05"}
    assert all(row["count"] >= body["threshold"] >= body["k"] for row in body["rows"])
    assert body["suppressed_groups"] >= 0
    again = w.client.get(f"/v1/insights/releases/{body['release_id']}", headers=analyst(w))
    assert again.status_code == 200 and again.json()["rows"] == body["rows"]  # free: the same release
    budget = w.client.get("/v1/insights/budget", headers=analyst(w)).json()
    assert budget["epsilon_spent"] == pytest.approx(1.0)


def test_csv_export_and_chart_series(world: World) -> None:
    w = world
    r = w.client.get("/v1/insights/summary", params={"by": "agency", "format": "csv", **WINDOW}, headers=analyst(w))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0][:2] == ["agency", "count"] and len(table) == 5  # four agencies
    assert float(r.headers["x-epsilon-spent"]) == pytest.approx(1.0)
    params = {"metric": "count", "by": "agency", "period": "week", **WINDOW}
    s = w.client.get("/v1/insights/series", params=params, headers=analyst(w))
    assert s.status_code == 200, s.text
    series = s.json()["series"]
    assert len(series) == 4 and all(len(line["points"]) == 14 for line in series)  # ISO weeks 9..22
    assert series[0]["points"][0]["period"] == "2026-W09"


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"by": "citizen"}, "by"),
        ({"by": "agency,agency"}, "by"),
        ({"by": "agency,service,channel,area"}, "by"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "to"),
        ({"metrics": "ack_time,income"}, "metrics"),
        ({"epsilon": "5"}, "epsilon"),
    ],
)
def test_bad_queries_are_refused_precisely(world: World, params: dict[str, str], where: str) -> None:
    w = world
    doc = problem(w.client.get("/v1/insights/summary", params={**WINDOW, **params}, headers=analyst(w)), 422)
    assert where in doc["errors"], doc
    assert w.client.get("/v1/insights/budget", headers=analyst(w)).json()["epsilon_spent"] == 0


def test_malformed_parameters_are_422(world: World) -> None:
    w = world
    for params in ({"from": "yesterday"}, {"period": "year"}, {"by": "Agency;drop"}, {"epsilon": "0"}):
        problem(w.client.get("/v1/insights/summary", params=params, headers=analyst(w)), 422)


def test_budget_exhausted_is_a_refusal_with_what_is_left(world: World) -> None:
    w = world
    for _ in range(5):
        ok = w.client.get("/v1/insights/summary", params={"epsilon": "2", **WINDOW}, headers=analyst(w))
        assert ok.status_code == 200, ok.text
    refused = w.client.get("/v1/insights/summary", params=WINDOW, headers=analyst(w))
    doc = problem(refused, 403, "privacy-budget-exhausted")
    assert doc["epsilon_remaining"] == "0" and doc["renews_at"]
    denied = w.events(action="insights.query", outcome="denied")
    assert denied and denied[-1]["reason"] == "privacy-budget-exhausted"


def test_only_analysts_query(world: World) -> None:
    w = world
    for headers in (w.caseworker("benefits-office"), w.compliance, w.admin):
        problem(w.client.get("/v1/insights/summary", params=WINDOW, headers=headers), 403)
    problem(w.client.get("/v1/insights/summary", params=WINDOW), 401)


def test_each_query_is_audited_without_values(world: World) -> None:
    w = world
    body = w.client.get("/v1/insights/summary", params={"by": "area", **WINDOW}, headers=analyst(w)).json()
    events = w.events(action="insights.query", outcome="allowed")
    assert len(events) == 1
    event = events[0]
    assert event["actor"] == "analyst@vault" and event["citizen_id"] is None and event["fields"] == []
    assert body["release_id"] in event["reason"]
    assert event["reason"].startswith(f"release {body['release_id']}; epsilon 1; by area")  # ids and cost only


def test_another_analysts_release_is_not_found(world: World) -> None:
    w = world
    body = w.client.get("/v1/insights/summary", params=WINDOW, headers=analyst(w)).json()
    w.vault.registry.assign("analyst@tax-office", "tax-office", "analyst", actor=OPERATOR)
    other = w.token("analyst@tax-office", "analyst", "tax-office")
    problem(w.client.get(f"/v1/insights/releases/{body['release_id']}", headers=other), 404)
