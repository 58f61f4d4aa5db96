"""Security headers on every response, requests only for known hosts, no redirects built from the
Host header, and /docs from pinned same-origin files (issue 19, findings 11 and 12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.docs import ASSETS, SWAGGER_UI_VERSION
from api.shield import allowed_hosts, host_name
from tests.support.api_world import World, open_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def assert_security_headers(headers: object) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert headers["x-frame-options"] == "DENY"  # type: ignore[index]
    assert headers["referrer-policy"] == "no-referrer"  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/v1/agencies", 401),  # refused by the app
        ("GET", "/no/such/thing", 404),
        ("GET", "/v1//agencies", 400),  # refused by the path hygiene middleware
        ("GET", "/docs", 200),
        ("GET", "/openapi.json", 200),
    ],
)
def test_every_kind_of_response_carries_the_security_headers(world: World, method: str, path: str, status: int) -> None:
    answer = world.client.request(method, path)
    assert answer.status_code == status
    assert_security_headers(answer.headers)
    assert "strict-transport-security" not in answer.headers  # plain HTTP: HSTS would be ignored or wrong


def test_hsts_is_sent_over_https(world: World) -> None:
    with TestClient(world.client.app, base_url="https://localhost") as client:
        answer = client.get("/healthz")
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert_security_headers(answer.headers)


def test_a_trailing_slash_is_not_redirected(world: World) -> None:
    answer = world.client.get("/v1/agencies/", follow_redirects=False, headers={"host": "localhost"})
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_request_for_another_host_is_refused_before_routing(world: World) -> None:
    answer = world.client.get("/v1/agencies/", follow_redirects=False, headers={"host": "evil.example"})
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == 400 and body["type"].endswith("/unknown-host")
    assert body["instance"] == "/v1/agencies/", "the members of every other problem answer (finding 10)"
    assert body["request_id"] == answer.headers["x-request-id"]
    assert answer.headers["cache-control"] == "no-store"
    assert "evil.example" not in answer.text
    assert_security_headers(answer.headers)


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "vault.gov.example"])
def test_the_issuer_host_and_local_names_are_served(world: World, host: str) -> None:
    settings = world.settings.model_copy(update={"issuer": "https://vault.gov.example"})
    client = TestClient(create_app(settings, world.vault))
    assert client.get("/healthz", headers={"host": host}).status_code == 200
    assert client.get("/healthz", headers={"host": "other.example"}).status_code == 400


def test_configured_hosts_replace_the_default() -> None:
    assert allowed_hosts(["API.gov.example"], "http://127.0.0.1:8000") == {"api.gov.example"}
    assert allowed_hosts([], "https://vault.gov.example/") == {"vault.gov.example", "localhost", "127.0.0.1", "::1"}


@pytest.mark.parametrize("header", [b"a@b.example", b"b.example/x", b"b.example:99999", b"\xff", b""])
def test_malformed_host_headers_name_no_host(header: bytes) -> None:
    assert host_name(header) is None


def test_docs_load_pinned_assets_from_the_app_itself(world: World) -> None:
    page = world.client.get("/docs")
    assert page.status_code == 200
    # the CSP forbids inline script and style
    assert "<script>" not in page.text and "<style" not in page.text and " style=" not in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(not re.match(r"^[a-z]+:|^//", s) for s in sources), sources  # same origin only
    for source in sources:
        asset = world.client.get(f"/{source}")
        assert asset.status_code == 200, source
        assert_security_headers(asset.headers)
    bundle = world.client.get("/docs/assets/swagger-ui/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert f"**{SWAGGER_UI_VERSION}**" in (ASSETS / "swagger-ui" / "README.md").read_text()
