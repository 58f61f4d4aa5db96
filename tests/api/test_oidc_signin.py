"""OpenID Connect sign-in against a real provider (Canaille, started by the suite on localhost).

The vault's browser is a TestClient; the provider's authorization endpoint is called over real HTTP
with the person already signed in there (pytest-iam's shortcut), so the redirect back carries a real
code, and the vault exchanges it at the real token endpoint with the PKCE verifier.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from pydantic import SecretStr

from api.security.oidc import PendingLogin
from tests.support import oidc_provider as op
from tests.support.api_world import World, open_world
from tests.support.web_world import refusal_page


@pytest.fixture(scope="module")
def provider() -> Iterator[op.Provider]:
    yield from op.start_provider()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: op.Provider) -> Iterator[World]:
    provider.forget_codes()
    with open_world(tmp_path, monkeypatch) as w:
        configure(w, provider.issuer)
        yield w


def configure(world: World, issuer: str) -> None:
    """Point the app at ``issuer`` (the client is built on the first sign-in, from these settings)."""
    app: Any = world.client.app
    app.state.settings = world.settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_client_id": op.CLIENT_ID,
            "oidc_client_secret": SecretStr(op.CLIENT_SECRET),
            "oidc_redirect_url": op.REDIRECT_URL,
            "oidc_role_claim": op.ROLE_CLAIM,
            "oidc_agency_claim": op.AGENCY_CLAIM,
            "oidc_default_role": "citizen",
        }
    )
    # The routes are the app's own (api/web/__init__.py): start() below fails with 404 without them.


def start(world: World, next_path: str = "/portal") -> tuple[str, PendingLogin]:
    """GET /login/oidc: the provider's authorization URL, and the pending sign-in the browser now holds."""
    response = world.client.get("/login/oidc", params={"next": next_path}, follow_redirects=False)
    assert response.status_code == 303, response.text
    pending = PendingLogin.decode(world.client.cookies.get("cv_oidc"), time.time())
    return response.headers["location"], pending


def authorize(provider: op.Provider, user: Any, url: str) -> dict[str, str]:
    """The person, signed in at the provider, follows the authorization URL: the callback's parameters."""
    provider.server.login(user)
    try:
        answer = httpx.get(url, follow_redirects=False, trust_env=False)
    finally:
        provider.server.logout()
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(op.REDIRECT_URL), location
    return dict(parse_qsl(urlsplit(location).query))


def callback(world: World, params: dict[str, str]) -> httpx.Response:
    response: httpx.Response = world.client.get("/login/oidc/callback", params=params, follow_redirects=False)
    return response


def login_events(world: World) -> list[dict[str, Any]]:
    return [e for e in world.events() if e["action"] == "web.login"]


def citizen(provider: op.Provider) -> tuple[str, Any]:
    citizen_id = str(uuid.uuid4())
    return citizen_id, provider.person(citizen_id)


# -- the whole flow ------------------------------------------------------------------------------


def test_citizen_signs_in_with_pkce_and_gets_a_server_session(world: World, provider: op.Provider) -> None:
    citizen_id, user = citizen(provider)
    url, pending = start(world, "/portal/consents")
    query = dict(parse_qsl(urlsplit(url).query))
    verifier_hash = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == verifier_hash.decode()
    assert query["state"] == pending.state and query["nonce"] == pending.nonce
    assert pending.verifier not in url

    response = callback(world, authorize(provider, user, url))

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal/consents"
    session = world.client.app.state.web_sessions.get(world.client.cookies.get("cv_session"))  # type: ignore[attr-defined]
    assert session is not None
    assert (session.subject, session.role, session.issuer) == (citizen_id, "citizen", provider.issuer)
    assert world.client.cookies.get("cv_oidc") is None  # the pending sign-in is spent
    assert any(e["outcome"] == "allowed" and e["actor"] == citizen_id for e in login_events(world))


def test_officer_signs_in_with_role_and_agency_from_claims(world: World, provider: op.Provider) -> None:
    user = provider.person("caseworker@benefits-office", role="caseworker", agency="benefits-office")
    url, _ = start(world, "")
    response = callback(world, authorize(provider, user, url))
    assert response.status_code == 303, response.text
    session = world.client.app.state.web_sessions.get(world.client.cookies.get("cv_session"))  # type: ignore[attr-defined]
    assert (session.subject, session.role, session.agency) == (
        "caseworker@benefits-office",
        "caseworker",
        "benefits-office",
    )


def test_officer_without_the_role_in_the_registry_is_refused(world: World, provider: op.Provider) -> None:
    user = provider.person("stranger@benefits-office", role="caseworker", agency="benefits-office")
    url, _ = start(world)
    response = callback(world, authorize(provider, user, url))
    refusal_page(response, 403)
    assert world.client.cookies.get("cv_session") is None


def test_next_outside_the_site_is_not_followed(world: World, provider: op.Provider) -> None:
    _, user = citizen(provider)
    url, pending = start(world, "//evil.example/steal")
    assert pending.next == ""
    response = callback(world, authorize(provider, user, url))
    assert response.status_code == 303 and response.headers["location"] == "/portal"


# -- state ---------------------------------------------------------------------------------------


def test_wrong_state_is_refused_and_audited(world: World, provider: op.Provider) -> None:
    _, user = citizen(provider)
    url, _ = start(world)
    params = authorize(provider, user, url)
    response = callback(world, params | {"state": "A" * 43})
    refusal_page(response, 401, "wrong-state")
    assert world.client.cookies.get("cv_session") is None
    assert any(e["outcome"] == "denied" and e["reason"] == "wrong-state" for e in login_events(world))


def test_callback_without_a_pending_sign_in_is_refused(world: World, provider: op.Provider) -> None:
    _, user = citizen(provider)
    url, _ = start(world)
    params = authorize(provider, user, url)
    world.client.cookies.clear()  # another browser: the attacker's code lands in the victim's (login CSRF)
    refusal_page(callback(world, params), 401, "no-pending-sign-in")


def test_replayed_callback_is_refused(world: World, provider: op.Provider) -> None:
    _, user = citizen(provider)
    url, _ = start(world)
    pending_cookie = world.client.cookies.get("cv_oidc")
    assert pending_cookie is not None
    params = authorize(provider, user, url)
    assert callback(world, params).status_code == 303
    refusal_page(callback(world, params), 401, "no-pending-sign-in")  # the callback spent the pending sign-in
    world.client.cookies.set("cv_oidc", pending_cookie)  # and a browser that kept a copy of it
    refusal_page(callback(world, params), 401, "token-endpoint-invalid_grant")  # the provider takes a code once


# -- PKCE, enforced by the provider ------------------------------------------------------------


def _code(world: World, provider: op.Provider) -> tuple[dict[str, str], PendingLogin]:
    _, user = citizen(provider)
    url, pending = start(world)
    return authorize(provider, user, url), pending


def _exchange(provider: op.Provider, code: str, **extra: str) -> dict[str, Any]:
    with OAuth2Client(op.CLIENT_ID, op.CLIENT_SECRET, token_endpoint_auth_method="client_secret_basic") as oauth:
        token: dict[str, Any] = oauth.fetch_token(
            f"{provider.issuer}/oauth/token",
            grant_type="authorization_code",
            code=code,
            redirect_uri=op.REDIRECT_URL,
            **extra,
        )
        return token


def test_code_without_the_verifier_is_refused_by_the_provider(world: World, provider: op.Provider) -> None:
    params, _ = _code(world, provider)
    with pytest.raises(OAuthError) as refused:
        _exchange(provider, params["code"])  # a stolen code, even with the client's own secret
    assert refused.value.error == "invalid_request"


def test_code_with_another_verifier_is_refused_by_the_provider(world: World, provider: op.Provider) -> None:
    params, _ = _code(world, provider)
    with pytest.raises(OAuthError) as refused:
        _exchange(provider, params["code"], code_verifier="B" * 64)
    assert refused.value.error == "invalid_grant"


def test_callback_whose_verifier_does_not_match_fails_at_the_provider(world: World, provider: op.Provider) -> None:
    params, pending = _code(world, provider)
    swapped = PendingLogin(pending.state, pending.nonce, "C" * 64, pending.next, pending.created)
    world.client.cookies.set("cv_oidc", swapped.encode())
    refusal_page(callback(world, params), 401, "token-endpoint-invalid_grant")
    assert world.client.cookies.get("cv_session") is None


def test_the_verifier_is_what_the_provider_checks(world: World, provider: op.Provider) -> None:
    """The counterpart of the refusals above: the same exchange with the right verifier succeeds."""
    params, pending = _code(world, provider)
    token = _exchange(provider, params["code"], code_verifier=pending.verifier)
    assert isinstance(token.get("id_token"), str)


# -- the provider unreachable ------------------------------------------------------------------


def test_unreachable_discovery_refuses_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open_world(tmp_path, monkeypatch) as w:
        configure(w, f"http://127.0.0.1:{port}")
        response = w.client.get("/login/oidc", follow_redirects=False)
        refusal_page(response, 503, "provider-unavailable")
        assert w.client.cookies.get("cv_oidc") is None
        assert any(e["outcome"] == "denied" and e["reason"] == "provider-unavailable" for e in login_events(w))


def test_the_sign_in_page_offers_the_configured_provider(world: World) -> None:
    page = world.client.get("/login", params={"next": "/portal/data"})
    assert page.status_code == 200
    assert 'href="/login/oidc?next=%2Fportal%2Fdata"' in page.text, page.text
