"""Every route is protected (deny by default), and cross-agency access is refused."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import starlette.concurrency
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import concurrency
from api.app import PUBLIC_PATHS, create_app
from api.security import issuing
from api.settings import AppSettings
from tests.support.routes import authz, flatten
from vault.demo_registry import seed_registry
from vault.runtime import Vault, init_vault

DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Vault, AppSettings]]:
    # No insights refresher thread (docs/insights.md): these tests watch who holds the SQLite write lock.
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10, insights_refresh_seconds=0)
    vault = init_vault(settings)
    seed_registry(vault.registry)
    with TestClient(create_app(settings, vault)) as client:
        yield client, vault, settings


def _token(vault: Vault, settings: AppSettings, subject: str, role: str, agency: str | None) -> dict[str, str]:
    tok = issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 600)
    return {"Authorization": f"Bearer {tok}"}


def _protected_routes(client: TestClient) -> list[APIRoute]:
    routes = flatten(list(client.app.routes))  # type: ignore[attr-defined]
    # Pages (api/web) answer without a session by sending the browser to sign in; their own
    # coverage test is tests/api/web/test_page_protection.py.
    return [
        r for r in routes if r.path not in PUBLIC_PATHS | DOC_PATHS and not r.endpoint.__module__.startswith("api.web")
    ]


def test_every_non_public_route_carries_an_authorisation_dependency_known_to_the_policy(env: Any) -> None:
    client, _, _ = env
    rules = {(r[2], r[3]) for r in client.app.state.guard.policy.rules()}
    routes = _protected_routes(client)
    assert len(routes) >= 12
    for route in routes:
        markers = authz(route.dependant)
        assert markers, f"{route.methods} {route.path} has no authorisation dependency"
        assert markers <= rules, f"{route.path} uses {markers - rules} that no policy line mentions"


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)


def test_every_protected_route_refuses_a_missing_or_forged_token(env: Any) -> None:
    client, _, _ = env
    for route in _protected_routes(client):
        for method in route.methods or ():
            for headers in ({}, {"Authorization": "Bearer not.a.token"}):
                response = client.request(method, _concrete(route.path), headers=headers, json={})
                assert response.status_code == 401, (method, route.path, response.status_code)
                assert response.headers["content-type"].startswith("application/problem+json")


def test_a_role_is_refused_on_every_route_its_rules_do_not_name(env: Any) -> None:
    client, vault, settings = env
    headers = _token(vault, settings, "compliance@vault", "compliance-officer", "vault")
    allowed = {(r[2], r[3]) for r in client.app.state.guard.policy.rules() if r[0] == "compliance-officer"}
    assert ("audit", "read") in allowed and not any(act in ("create", "update", "delete", "use") for _, act in allowed)
    refused = 0
    for route in _protected_routes(client):
        if authz(route.dependant) <= allowed:
            continue
        for method in route.methods or ():
            response = client.request(method, _concrete(route.path), headers=headers, json={})
            assert response.status_code == 403, (method, route.path, response.status_code)
            refused += 1
    assert refused >= 12


def test_cross_agency_access_is_refused(env: Any) -> None:
    client, vault, settings = env
    registrar = _token(vault, settings, "registrar@civil-registry", "registrar", "civil-registry")
    created = client.post(
        "/v1/citizens", json={"fields": {"given_name": "Eero", "family_name": "Brackenbury"}}, headers=registrar
    )
    assert created.status_code == 201
    cid = created.json()["id"]
    assert client.get(f"/v1/citizens/{cid}", headers=registrar).status_code == 200
    other = _token(vault, settings, "registrar@tax-office", "registrar", "tax-office")
    assert client.get(f"/v1/citizens/{cid}", headers=other).status_code == 403
    assert client.delete(f"/v1/citizens/{cid}", headers=other).status_code == 403
    # A tax-office token claiming the civil registry's domain is refused: the role is not held there.
    forged_domain = _token(vault, settings, "registrar@tax-office", "registrar", "civil-registry")
    assert client.get(f"/v1/citizens/{cid}", headers=forged_domain).status_code == 403
    # An agency admin manages only its own agency's clients.
    vault.registry.assign("admin@tax-office", "tax-office", "admin")
    admin = _token(vault, settings, "admin@tax-office", "admin", "tax-office")
    assert client.post("/v1/clients", json={"agency": "tax-office", "name": "ok"}, headers=admin).status_code == 201
    assert client.post("/v1/clients", json={"agency": "city-clinic", "name": "no"}, headers=admin).status_code == 403


def test_a_citizen_reads_only_their_own_profile(env: Any) -> None:
    client, vault, settings = env
    a = vault.profiles.create({"given_name": "Hiro", "family_name": "Oddsock"}, "civil-registry")
    b = vault.profiles.create({"given_name": "Gudrun", "family_name": "Plumtree"}, "civil-registry")
    me = _token(vault, settings, str(a), "citizen", None)
    assert client.get("/v1/me", headers=me).json()["fields"]["given_name"] == "Hiro"
    assert client.get(f"/v1/citizens/{b}", headers=me).status_code == 403


def test_a_removed_role_loses_access_on_the_next_request(env: Any) -> None:
    client, vault, settings = env
    registrar = _token(vault, settings, "registrar@civil-registry", "registrar", "civil-registry")
    assert client.get("/v1/citizens?national_id=123456789", headers=registrar).status_code == 200
    vault.registry.unassign("registrar@civil-registry", "civil-registry", "registrar")
    refused = client.get("/v1/citizens?national_id=123456789", headers=registrar)
    assert refused.status_code == 403 and refused.json()["reason"].startswith("role-not-held")


def test_a_read_waits_in_the_threadpool_when_another_process_holds_the_database(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite /v1/me runs on the event loop only if the write lock is free at once; held by
    another process, the read goes to the threadpool, waits there and then succeeds."""
    client, vault, settings = env
    a = vault.profiles.create({"given_name": "Hiro", "family_name": "Oddsock"}, "civil-registry")
    me = _token(vault, settings, str(a), "citizen", None)
    handed_over: list[Any] = []
    real = starlette.concurrency.run_in_threadpool

    async def spy(call: Any, *args: Any) -> Any:
        handed_over.append(call)
        return await real(call, *args)

    monkeypatch.setattr(concurrency, "run_in_threadpool", spy)
    assert client.get("/v1/me", headers=me).status_code == 200
    assert handed_over == []  # lock free: ran on the loop
    other = sqlite3.connect(settings.data_dir / "vault.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("ROLLBACK"))
    release.start()
    try:
        response = client.get("/v1/me", headers=me)
    finally:
        release.join()
        other.close()
    assert response.status_code == 200 and response.json()["fields"]["given_name"] == "Hiro"
    assert len(handed_over) == 1  # lock held: handed to the threadpool, which waited
