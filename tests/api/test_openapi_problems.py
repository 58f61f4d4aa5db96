"""The OpenAPI document names every status an operation can answer, each error as the
application/problem+json document the server really sends (issue 19, finding 18)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.support.api_world import ODILE, World, open_world

PROBLEM = "application/problem+json"
EVERY_OPERATION = {"400", "413", "500", "503"}  # path hygiene, body size, the unexpected, audit or store down
PROTECTED = {"401", "403", "429"}
WITH_BODY = {"400", "413", "415", "422"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


def _problem_schema(document: dict[str, Any]) -> dict[str, Any]:
    schema = dict(document["components"]["schemas"]["Problem"])
    return schema


def test_every_error_status_is_documented_as_a_problem_document(world: World) -> None:
    document = world.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        expected = set(EVERY_OPERATION)
        if operation.get("security"):
            expected |= PROTECTED
        if operation.get("parameters"):
            expected.add("422")
        if "requestBody" in operation and path != "/v1/token":
            expected |= WITH_BODY
        assert expected <= statuses, (method, path, sorted(expected - statuses))
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and not (path == "/readyz" and status == "503"):
                content = response.get("content", {})
                assert list(content) == [PROBLEM], (method, path, status, content)
                assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_the_documented_problem_schema_matches_real_answers(world: World) -> None:
    w = world
    document = w.client.get("/openapi.json").json()
    schema = {**_problem_schema(document), "components": document["components"]}
    answers = [
        w.client.post("/v1/citizens", json={"fields": {"income": "many"}}, headers=w.registrar),  # 422 catalogue
        w.client.post("/v1/citizens", json={"fieldz": ODILE}, headers=w.registrar),  # 422 schema
        w.client.get("/v1/citizens/not-a-uuid", headers=w.registrar),  # 422 path
        w.client.get("/v1/citizens"),  # 401
        w.client.get("/v1/citizens//x"),  # 400, from the middleware
    ]
    for response in answers:
        assert response.status_code >= 400 and response.headers["content-type"] == PROBLEM, response.text
        jsonschema_rs.validate(schema, response.json())
