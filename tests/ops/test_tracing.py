"""Optional OpenTelemetry tracing (issue 18): off by default; on, a grant read yields spans for the
request, the policy check, key unwraps, the audit append and database statements, and no span name
or attribute holds a citizen id, subject, token or field value. The SDK's in-memory exporter stands
in for a collector (nothing leaves the process). All people are invented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.app import create_app
from tests.support.api_world import ODILE, World, open_world


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _grant_read(w: World, client: TestClient) -> tuple[str, str]:
    odile = w.citizen(ODILE)
    grant = client.post(
        "/v1/grants",
        json={"citizen_id": odile, "purpose": "tax-assessment", "fields": ["given_name", "income"]},
        headers=w.tax,
    ).json()
    read = client.get(f"/v1/grants/{grant['id']}/data", headers=w.tax)
    assert read.status_code == 200, read.text
    return odile, grant["id"]


def test_tracing_is_off_by_default(world: World, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    _grant_read(world, world.client)
    assert exporter.get_finished_spans() == ()


def test_spans_cover_the_request_path_and_carry_no_personal_data(world: World, exporter: InMemorySpanExporter) -> None:
    w = world
    settings = w.settings.model_copy(update={"tracing": True, "express_reads": False})
    exporter.clear()
    client = TestClient(create_app(settings, w.vault), raise_server_exceptions=False)
    odile, grant_id = _grant_read(w, client)
    spans = exporter.get_finished_spans()
    names = {s.name for s in spans}
    assert "HTTP GET /v1/grants/{grant_id}/data" in names
    assert {"policy.check", "key.unwrap", "audit.append", "db.statement"} <= names
    forbidden = [odile, grant_id, "caseworker@tax-office", w.tax["Authorization"].split()[1]]
    forbidden += [str(v) for v in ODILE.values()]
    for span in spans:
        text = span.name + " " + " ".join(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        for secret in forbidden:
            assert secret not in text, (span.name, secret)
