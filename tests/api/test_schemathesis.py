"""Requests generated from the app's own OpenAPI document: no server error, and every answer conforms
to the document (status documented, content type, body schema), for every role that may call the
operation (issue 19, findings 2, 10 and 18).

Three sources of requests, all deterministic:

* schemathesis' coverage phase: for every parameter and body member, the boundary values of its
  schema (minimum, maximum, one past each, shortest and longest strings) and values that break it;
* an explicit sweep of extreme values into every integer, date-time and string parameter and body
  member, one at a time (instants that overflow in UTC, sequence numbers past 64 bits, control
  characters, over-long text), which JSON Schema cannot describe as boundaries;
* a few examples per operation from schemathesis' fuzzing, positive and negative.

Each runs with the tokens of the roles Casbin lets call the operation, so that the parameters reach
their validation instead of stopping at a 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.formats import unregister_string_format

from api.app import create_app
from api.errors import ApiProblem
from api.security import issuing
from api.security.auth import Principal
from api.settings import AppSettings
from tests.support.api_world import ODILE
from vault.demo_registry import seed_purposes, seed_registry
from vault.runtime import init_vault

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = {
    "registrar": ("registrar@civil-registry", "registrar", "civil-registry"),
    "caseworker": ("caseworker@benefits-office", "caseworker", "benefits-office"),
    "compliance": ("compliance@vault", "compliance-officer", "vault"),
    "admin": ("admin@vault", "admin", "vault"),
    "analyst": ("analyst@vault", "analyst", "vault"),
}
# Zoned instants at and past the edges of what converts to UTC (the schema refuses the outer ones).
EDGE_INSTANTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "9000-01-01T00:00:00Z",
    "9000-01-01T00:00:00.000001Z",
]
OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=14)), timezone(timedelta(hours=5, minutes=45))]
EXTREMES: dict[str, list[Any]] = {
    "integer": [-1, 0, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30],
    "date-time": [*EDGE_INSTANTS, "2024-01-01T00:00:00", "2024-13-01T00:00:00Z", "not a time"],
    "string": ["", "\x00", "a\x1bb", "\x7f\x85", "line\nbreak", "x" * 5000, "\u202e\ufeff", "<script>"],
}


class World:
    """A seeded vault behind a client, and a token per role (the citizen has a profile)."""

    def __init__(self, root: Path) -> None:
        self.settings = AppSettings(
            data_dir=root,
            keyring_scrypt_n=2**10,
            rate_limit_per_minute=10**6,
            auth_failures_per_minute=10**6,
            source_requests_per_minute=10**7,
            allowed_hosts=["testserver"],  # the Host schemathesis's ASGI transport sends
        )
        self.vault = init_vault(self.settings)
        seed_registry(self.vault.registry)
        seed_purposes(self.vault.purposes)
        citizen = str(self.vault.profiles.create(ODILE, "civil-registry"))
        self.who = {"citizen": Principal(citizen, "citizen", "-", self.settings.issuer)}
        self.who |= {name: Principal(s, r, a, self.settings.issuer) for name, (s, r, a) in ROLES.items()}
        self.app = create_app(self.settings, self.vault)
        self.client = TestClient(self.app)

    def headers(self, role: str | None) -> dict[str, str]:
        """Bearer headers of ``role`` (None: no token)."""
        if role is None:
            return {}
        p, s = self.who[role], self.settings
        agency = None if p.role == "citizen" else p.agency
        token = issuing.issue(self.vault.signing, s.issuer, s.audience, p.subject, p.role, agency, 3600)
        return {"Authorization": f"Bearer {token}"}

    def roles_for(self, operation: Any) -> list[str | None]:
        """The roles Casbin lets call ``operation`` (no token for a public one)."""
        route = next(r for r in _routes(self.app) if r.path == operation.path and operation.method.upper() in r.methods)
        marker = _authz(route.dependant)
        if marker is None:
            return [None]
        guard = self.app.state.guard
        allowed: list[str | None] = []
        for name, principal in self.who.items():
            try:
                guard.authorize(principal, *marker)
            except ApiProblem:  # refused by policy: not a role to test this operation with
                continue
            allowed.append(name)
        return allowed or ["admin"]  # nobody may: the refusal itself is then what is checked


def _routes(app: Any) -> Iterator[Any]:
    for route in app.routes:
        if hasattr(route, "original_router"):
            yield from _routes(route.original_router)
        elif hasattr(route, "dependant"):
            yield route


def _authz(dependant: Any) -> tuple[str, str] | None:
    for dep in dependant.dependencies:
        marker = getattr(dep.call, "authz", None) or _authz(dep)
        if marker is not None:
            return tuple(marker)
    return None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    instants = st.datetimes(timezones=st.sampled_from(OFFSETS)).map(lambda d: d.isoformat())
    schemathesis.openapi.format("date-time", st.sampled_from(EDGE_INSTANTS) | instants)
    w = World(tmp_path_factory.mktemp("schemathesis"))
    with w.client:
        yield w
    unregister_string_format("date-time")
    w.vault.close()


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", world.app)


def _operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


def _check(world: World, case: Any, roles: list[str | None], problems: list[str]) -> None:
    """Send ``case`` as each role; note every server error or non-conformance."""
    for role in roles:
        response = case.call(headers=world.headers(role))
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as failure:  # schemathesis raises an exception group
            problems.append(f"{role}: {case.method} {case.formatted_path} -> {response.status_code}: {failure}"[:600])
        if not response.headers.get("x-request-id") or response.headers.get("cache-control") != ["no-store"]:
            problems.append(f"{role}: {case.method} {case.formatted_path}: no x-request-id or no-store")


def test_boundary_values_of_every_parameter_get_no_server_error(world: World, api_schema: Any) -> None:
    """Schemathesis' coverage phase (boundaries and schema violations), as every role allowed."""
    operations = _operations(api_schema)
    assert len(operations) >= 40
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    problems: list[str] = []
    for operation in operations:
        roles = world.roles_for(operation)
        config = api_schema.config.generation_for(operation=operation)
        for case in api_schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config):
            _check(world, case, roles, problems)
    assert not problems, "\n".join(problems[:20])


def _inputs(operation: Any) -> Iterator[tuple[str, str, str]]:
    """(where, name, kind) of every integer, date-time and string parameter and top-level body member."""
    for parameter in operation.definition.raw.get("parameters", []):
        kind = _kind(parameter.get("schema", {}))
        if kind is not None:
            yield parameter["in"], parameter["name"], kind
    body = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        schema = _resolve(operation, body["schema"])
        for name, member in schema.get("properties", {}).items():
            kind = _kind(_resolve(operation, member))
            if kind is not None:
                yield "body", name, kind


def _resolve(operation: Any, schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def _kind(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("format") == "date-time":
            return "date-time"
        if option.get("type") in ("integer", "string"):
            return str(option["type"])
        if option.get("type") == "array":
            return _kind(option.get("items", {}))
    return None


def test_extreme_values_in_every_parameter_and_member_get_no_server_error(world: World, api_schema: Any) -> None:
    """One extreme at a time into an otherwise valid request: past 64 bits, past the range of an
    instant, control characters, over-long text."""
    problems: list[str] = []
    swept = 0
    for operation in _operations(api_schema):
        inputs = list(_inputs(operation))
        if not inputs:
            continue
        roles = world.roles_for(operation)
        config = api_schema.config.generation_for(operation=operation)
        cases = api_schema.iter_coverage_cases(
            operation, generation_modes=[GenerationMode.POSITIVE], generation_config=config
        )
        base = next(iter(cases))
        for where, name, kind in inputs:
            for value in EXTREMES[kind]:
                if where == "path" and value == "":
                    continue  # an empty segment names another resource, not this operation
                if where == "header" and isinstance(value, str) and not value.isprintable():
                    continue  # HTTP cannot carry a control character in a header (X-Acting-For): no client sends one
                parts = {
                    "path": dict(base.path_parameters or {}),
                    "query": dict(base.query or {}),
                    "header": dict(base.headers or {}),
                }
                body = base.body
                if where == "body":
                    body = {**body, name: [value] if isinstance(body.get(name), list) else value}
                else:
                    parts[where][name] = value
                case = operation.Case(
                    path_parameters=parts["path"],
                    query=parts["query"],
                    headers=parts["header"],
                    body=body,
                    media_type=base.media_type,
                )
                _check(world, case, roles, problems)
                swept += 1
    assert swept > 200
    assert not problems, "\n".join(problems[:20])


def test_generated_requests_get_no_server_error(world: World, api_schema: Any) -> None:
    """A few fuzzed requests per operation, valid and invalid, as every role allowed."""
    problems: list[str] = []
    for operation in _operations(api_schema):
        roles = world.roles_for(operation)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not list(_inputs(operation)):
                continue

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                _check(world, case, roles, problems)

            check()
    assert not problems, "\n".join(problems[:20])
