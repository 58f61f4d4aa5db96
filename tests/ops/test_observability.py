"""Metrics, access logs and readiness (issue 18): a full flow (create, read through a grant,
consent, refusals, operator export) leaves one JSON access line per request with its request id,
and neither the log lines nor the metric labels hold any of the test data's values, ids, subjects
or tokens. /metrics is only for the allowed networks. All people here are invented."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.logconfig import JsonFormatter
from tests.support.api_world import BARNABY, ODILE, World, open_world
from vault import operations

CLIENT_SIDE = {"httpx", "httpcore"}
BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record of every logger, at every level, as the service formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def local(w: World) -> TestClient:
    """A client that connects from 127.0.0.1 (the default metrics network)."""
    return TestClient(w.client.app, client=("127.0.0.1", 40000))


def flow(w: World, tmp_path: Path) -> tuple[list[str], list[Any]]:
    """Create, read through a grant, consent, a refusal, an export; returns the secrets used and responses."""
    odile = w.citizen(ODILE)
    created = w.client.post("/v1/citizens", json={"fields": BARNABY}, headers=w.registrar)
    assert created.status_code == 201, created.text
    barnaby = created.json()["id"]
    grant = w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["given_name", "income"])
    read = w.read(w.tax, grant["id"])
    assert read.status_code == 200, read.text
    consent = w.consent(barnaby, **BENEFITS, categories=["identity"])
    assert consent.status_code == 201, consent.text
    withdrawn = w.client.delete(f"/v1/me/consents/{consent.json()['id']}", headers=w.me(barnaby))
    assert withdrawn.status_code == 200
    refused = w.client.get(f"/v1/citizens/{odile}", headers={"Authorization": "Bearer not.a.token"})
    assert refused.status_code == 401
    own = w.client.get("/v1/me", headers=w.me(odile))
    assert own.status_code == 200
    operations.export(w.vault, tmp_path / "export.jsonl", decrypted=True)
    tokens = [h["Authorization"].split()[1] for h in (w.tax, w.registrar, w.me(odile), w.me(barnaby))]
    secrets = [str(v) for person in (ODILE, BARNABY) for v in person.values()]
    ids = [odile, barnaby, grant["id"], consent.json()["id"]]
    subjects = ["caseworker@tax-office", "registrar@civil-registry"]
    return secrets + tokens + ids + subjects, [created, read, consent, withdrawn, refused, own]


def test_logs_and_metric_labels_hold_no_personal_data(world: World, captured: io.StringIO, tmp_path: Path) -> None:
    w = world
    forbidden, responses = flow(w, tmp_path)
    scraped = local(w).get("/metrics")
    assert scraped.status_code == 200
    # The test's own HTTP client (httpx) logs the URLs it calls; everything else is the service's.
    lines = [
        line for line in captured.getvalue().splitlines() if json.loads(line)["logger"].split(".")[0] not in CLIENT_SIDE
    ]
    access = [json.loads(line) for line in lines if '"citizen_vault.access"' in line]
    assert len(access) >= len(responses)
    # Every request has its access line, found by the request id the client saw.
    by_id = {line["request_id"]: line for line in access}
    for response in responses:
        line = by_id[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert line["route"] in (
            "/v1/citizens",
            "/v1/grants/{grant_id}/data",
            "/v1/me/consents",
            "/v1/me/consents/{consent_id}",
            "/v1/citizens/{citizen_id}",
            "/v1/me",
        ), line
        assert isinstance(line["duration_ms"], float)
    created_line = by_id[responses[0].headers["x-request-id"]]
    assert (created_line["role"], created_line["agency"]) == ("registrar", "civil-registry")
    assert by_id[responses[4].headers["x-request-id"]]["reason"] == responses[4].json()["reason"]
    labels = [
        value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        for value in sample.labels.values()
    ]
    for secret in forbidden:
        assert not [line for line in lines if secret in line], secret
        assert not [v for v in labels if secret in v], secret
        assert secret not in scraped.text


def test_metrics_count_requests_refusals_audit_keys_and_pool(world: World, tmp_path: Path) -> None:
    w = world
    flow(w, tmp_path)
    families = {f.name: f for f in text_string_to_metric_families(local(w).get("/metrics").text)}

    def total(name: str, **match: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name.endswith("_total") or s.name.endswith("_count") or s.name == name
            if all(s.labels.get(k) == v for k, v in match.items())
        )

    assert total("cv_http_requests", route="/v1/grants/{grant_id}/data", status="200") >= 1
    assert total("cv_http_request_duration_seconds", route="/v1/citizens", method="post") == 1
    assert total("cv_refusals") >= 1
    assert total("cv_audit_append_duration_seconds") >= 5
    assert total("cv_audit_events", outcome="denied") >= 1
    assert total("cv_key_operations", operation="unwrap", result="ok") >= 1
    assert total("cv_key_operations", operation="wrap", result="ok") >= 1
    assert total("cv_pii_scan_duration_seconds") >= 1
    assert {s.labels["store"] for s in families["cv_db_pool_checked_out"].samples} == {"data", "keys"}
    grant_uses = [s for s in families["cv_audit_events"].samples if s.labels.get("action", "").startswith("grants.")]
    consent_changes = [
        s for s in families["cv_audit_events"].samples if s.labels.get("action", "").startswith("consent")
    ]
    assert grant_uses and consent_changes


def test_metrics_refuse_other_networks(world: World) -> None:
    w = world
    refused = w.client.get("/metrics")  # TestClient's address is not loopback
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["reason"] == "metrics-network"
    far = TestClient(w.client.app, client=("203.0.113.7", 40000)).get("/metrics")
    assert far.status_code == 403


def test_ready_names_what_is_not_ready(world: World) -> None:
    w = world
    ready = w.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {k: "ok" for k in ("data_store", "key_store", "keys", "audit", "policy")}
    w.vault.key_engine.dispose()
    store = Path(str(w.vault.key_engine.url.database))
    moved = store.with_name("moved-away.db")
    store.rename(moved)
    store.mkdir()  # a directory where the key store was: it cannot be opened
    try:
        down = w.client.get("/readyz")
    finally:
        store.rmdir()
        moved.rename(store)
    assert down.status_code == 503
    assert down.headers["retry-after"] == "5"
    body = down.json()
    assert body["checks"]["key_store"] == "unavailable" and body["checks"]["data_store"] == "ok"
    assert body["reasons"]["key_store"].startswith("failed: ")
    assert w.client.get("/readyz").status_code == 200  # back without a restart
