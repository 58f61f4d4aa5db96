"""An HTTP test world for the consent and grant API tests: a seeded vault behind a TestClient, tokens for the
demo officers and for citizens, audit and access-log readers, and JWS verification with nothing but
the public JWKS (python-jose, as an outside party would).

Every person here is invented ("Testworth", "Quibble" ...), as are the agencies and statutes.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from jose import jws
from sqlalchemy import Engine, event

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from vault.demo_registry import DemoClient, seed_purposes, seed_registry
from vault.runtime import Vault, init_vault

Headers = dict[str, str]
PROBLEM = "application/problem+json"

# Two invented people with every catalogue field; more are made by ``person``.
ODILE = {
    "given_name": "Odile",
    "family_name": "Quibblethorpe",
    "date_of_birth": "1977-03-14",
    "national_id": "961-000-001",
    "email": "odile.quibblethorpe@example.org",
    "phone": "+999 555 0101",
    "address": "3 Marmalade Row, Nowhereville",
    "income": 31415,
    "health_notes": "Allergic to invented pollen.",
}
BARNABY = {
    "given_name": "Barnaby",
    "family_name": "Testworth",
    "date_of_birth": "1988-08-08",
    "national_id": "961-000-002",
    "email": "barnaby.testworth@example.org",
    "phone": "+999 555 0102",
    "address": "9 Crumpet Lane, Nowhereville",
    "income": 27182,
    "health_notes": "Fractured an imaginary toe.",
}


def person(i: int) -> dict[str, Any]:
    """The i-th invented citizen of a crowd (distinct national ids)."""
    return {
        "given_name": f"Crowd{i:03d}",
        "family_name": "Testworth",
        "national_id": f"962-{i:03d}-000",
        "income": 1000 + i,
        "health_notes": "Nothing noted.",
    }


@dataclass
class World:
    """A seeded vault with an HTTP client; methods speak as the demo's officers and citizens."""

    client: TestClient
    vault: Vault
    settings: AppSettings
    apps: dict[str, DemoClient] = field(default_factory=dict)

    # -- identities ---------------------------------------------------------------------------
    def token(self, subject: str, role: str, agency: str | None) -> Headers:
        """Bearer headers for a token issued by the vault itself."""
        s = self.settings
        tok = issuing.issue(self.vault.signing, s.issuer, s.audience, subject, role, agency, 600)
        return {"Authorization": f"Bearer {tok}"}

    def caseworker(self, agency: str) -> Headers:
        """A seeded caseworker of ``agency`` (tax-office, benefits-office, city-clinic)."""
        return self.token(f"caseworker@{agency}", "caseworker", agency)

    def app(self, agency: str) -> Headers:
        """The agency's seeded API client."""
        return self.token(self.apps[agency].client_id, "agency-app", agency)

    @property
    def tax(self) -> Headers:
        return self.caseworker("tax-office")

    @property
    def benefits(self) -> Headers:
        return self.caseworker("benefits-office")

    @property
    def clinic(self) -> Headers:
        return self.caseworker("city-clinic")

    @property
    def admin(self) -> Headers:
        return self.token("admin@vault", "admin", "vault")

    @property
    def compliance(self) -> Headers:
        return self.token("compliance@vault", "compliance-officer", "vault")

    @property
    def registrar(self) -> Headers:
        return self.token("registrar@civil-registry", "registrar", "civil-registry")

    def me(self, citizen: str) -> Headers:
        """The citizen themselves (their subject is their vault id)."""
        return self.token(citizen, "citizen", None)

    def citizen(self, fields: dict[str, Any]) -> str:
        """Register an invented person directly in the vault; returns their id."""
        return str(self.vault.profiles.create(fields, "civil-registry"))

    # -- grants -------------------------------------------------------------------------------
    def ask(self, headers: Headers, **body: Any) -> Response:
        """POST /v1/grants (citizen ids given as strings)."""
        response: Response = self.client.post("/v1/grants", json=body, headers=headers)
        return response

    def granted(self, headers: Headers, **body: Any) -> dict[str, Any]:
        """A grant that must be issued at once (201, active)."""
        response = self.ask(headers, **body)
        assert response.status_code == 201, response.text
        grant: dict[str, Any] = response.json()
        assert grant["status"] == "active" and grant["jws"], grant
        return grant

    def read(self, headers: Headers, grant_id: str, **params: Any) -> Response:
        """GET /v1/grants/{id}/data."""
        response: Response = self.client.get(f"/v1/grants/{grant_id}/data", params=params, headers=headers)
        return response

    def grant(self, headers: Headers, grant_id: str) -> dict[str, Any]:
        """GET /v1/grants/{id}, which must succeed."""
        response = self.client.get(f"/v1/grants/{grant_id}", headers=headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    # -- consents -----------------------------------------------------------------------------
    def consent(self, citizen: str, **body: Any) -> Response:
        """POST /v1/me/consents as the citizen."""
        response: Response = self.client.post("/v1/me/consents", json=body, headers=self.me(citizen))
        return response

    def receipts(self, citizen: str, consent_id: str) -> list[dict[str, Any]]:
        """Every version of one of the citizen's consents."""
        response = self.client.get(f"/v1/me/consents/{consent_id}/receipts", headers=self.me(citizen))
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    # -- what was recorded --------------------------------------------------------------------
    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Audit events (as the vault's compliance officer), every page."""
        out: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            response = self.client.get(
                "/v1/audit/events", params={"limit": 1000, "after": after, **params}, headers=self.compliance
            )
            assert response.status_code == 200, response.text
            page = response.json()
            out += page["events"]
            after = page["next_after"]
        return out

    def access_log(self, citizen: str) -> list[dict[str, Any]]:
        """The citizen's own access log (first 1000 entries)."""
        response = self.client.get("/v1/me/access-log", params={"limit": 1000}, headers=self.me(citizen))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def refusal_event(self, response: Response, outcome: str = "denied") -> dict[str, Any]:
        """The one audit event recorded for a refused request, found by its request id."""
        request_id = response.headers["x-request-id"]
        found = [e for e in self.events(outcome=outcome) if e["request_id"] == request_id]
        assert found, f"no {outcome} event for request {request_id}: the refusal was not audited"
        return found[-1]

    # -- signatures ---------------------------------------------------------------------------
    def jwks(self) -> dict[str, dict[str, Any]]:
        """The public keys by kid, fetched without any credentials."""
        response = self.client.get("/.well-known/jwks.json")
        assert response.status_code == 200, response.text
        return {k["kid"]: k for k in response.json()["keys"]}


def verify(token: str, jwks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Verify a compact JWS with the key its header names; the payload as JSON. Raises on a bad signature."""
    header = jws.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] in jwks, header
    payload: dict[str, Any] = json.loads(jws.verify(token, jwks[header["kid"]], algorithms=["ES256"]))
    return payload


def header(token: str) -> dict[str, Any]:
    """The unverified JOSE header."""
    found: dict[str, Any] = jws.get_unverified_header(token)
    return found


def tampered(token: str, change: dict[str, Any]) -> str:
    """The same header and signature over a payload with ``change`` applied."""
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(payload | change).encode()).rstrip(b"=").decode()
    return ".".join([head, forged, signature])


def problem(response: Response, status: int, reason: str | None = None) -> dict[str, Any]:
    """Assert a problem document with ``status`` (and ``reason``); return it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status, doc
    if reason is not None:
        assert doc.get("reason") == reason, doc
    return doc


def is_uuid(value: object) -> bool:
    """A well-formed UUID string."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def fail_fast_on_lock_waits(engine: Engine, ms: int = 2000) -> None:
    """These tests make one request at a time, so a SQLite lock wait can only be a request waiting on
    its own open transaction (a self-deadlock): surface it in ``ms`` instead of the 30 s busy timeout."""

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(ms)}")
        cur.close()

    engine.dispose()


@contextmanager
def open_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A fresh vault in ``tmp_path`` with the demo's agencies, officers, clients and three purposes."""
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    # No insights refresher thread (docs/insights.md): these tests watch who holds the SQLite write lock.
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10, insights_refresh_seconds=0)
    vault = init_vault(settings)
    fail_fast_on_lock_waits(vault.data_engine)
    apps = {c.agency: c for c in seed_registry(vault.registry)}
    seed_purposes(vault.purposes)
    try:
        # As a client sees it: an unexpected server error is a 500 problem document, not an exception.
        with TestClient(create_app(settings, vault), raise_server_exceptions=False) as client:
            yield World(client, vault, settings, apps)
    finally:
        vault.close()
