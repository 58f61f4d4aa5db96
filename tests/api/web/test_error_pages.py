"""A refused page request is answered with a page in plain words (api/web/error_pages.py): the same
status, headers and audit as the API's problem+json, which every API route keeps. All people and
agencies are fictitious."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from pydantic import SecretStr

from api.shield import CSP
from tests.support.api_world import problem
from tests.support.web_world import FORM, WebWorld, open_web_world, refusal_page
from vault.errors import CitizenErased, Conflict

BENEFITS = {"choice": "benefits-office|benefit-eligibility", "expires": ""}


def _audited_once(web: WebWorld, response: Response) -> dict[str, Any]:
    """The refusal's one audit event (by its request id)."""
    found = [e for e in web.events(outcome="denied") if e["request_id"] == response.headers["x-request-id"]]
    assert len(found) == 1, found
    return found[0]


def _page_headers(response: Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert "no-store" in response.headers["cache-control"]


def test_a_caseworker_on_the_console_gets_a_page_saying_who_it_is_for_audited_once(web: WebWorld) -> None:
    web.sign_in("caseworker@benefits-office")
    refused = web.client.get("/console", headers={"Accept": "application/json"})  # by route, not by Accept
    text = refusal_page(refused, 403, "policy")
    assert "You are signed in as a caseworker; this page is for compliance officers." in text
    assert '<a href="/agency">Go to your start page</a>' in text
    _page_headers(refused)
    assert _audited_once(web, refused)["action"] == "audit.read"


def test_an_officer_on_the_portal_is_told_the_portal_is_for_citizens(web: WebWorld) -> None:
    web.sign_in("registrar@civil-registry")
    refused = web.client.get("/portal/data")
    assert "You are signed in as a registrar; this page is for citizens." in refusal_page(refused, 403, "policy")
    assert _audited_once(web, refused)["action"] == "me.read"


def test_another_citizens_consent_is_not_found_in_plain_words(web: WebWorld) -> None:
    other = web.demo_citizens[1]  # type: ignore[index]
    theirs = web.consent(other, agency="benefits-office", purpose="benefit-eligibility", categories=["identity"])
    web.sign_in("citizen-0")
    for path in (
        f"/portal/consents/{theirs.json()['id']}/receipts",
        f"/portal/consents/{theirs.json()['id']}/withdraw",
    ):
        shown = web.client.get(path)
        assert "We could not find that consent." in refusal_page(shown, 404), path
        _page_headers(shown)
    assert "We could not find this page." in refusal_page(web.client.get("/portal/no-such-page"), 404)


def test_a_form_without_its_token_says_the_form_expired_audited_once_and_changes_nothing(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    refused = web.client.post("/portal/consents", data=BENEFITS, headers=FORM)
    text = refusal_page(refused, 403, "csrf")
    assert "<h1>Your form expired</h1>" in text and "Go back, reload the page and try again." in text
    assert (_audited_once(web, refused)["reason"]) == "csrf"
    assert web.client.get("/v1/me/consents", headers=web.me(web.demo_citizens[0])).json() == []  # type: ignore[index]


def test_too_many_sign_ins_get_a_page_with_retry_after_audited_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_web_world(tmp_path, monkeypatch, web_logins_per_minute=1) as w:
        assert w.sign_in("citizen-0").status_code == 303
        limited = w.sign_in("citizen-1", client=w.browser())
        text = refusal_page(limited, 429, "sign-in-rate")
        assert f"Wait {limited.headers['retry-after']} seconds, then try again." in text
        assert '<a href="/login">Go to the sign-in page</a>' in text
        assert _audited_once(w, limited)["action"] == "web.login"


def test_a_failed_oidc_sign_in_gets_a_401_page_clearing_the_pending_cookie_audited_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {
        "oidc_issuer": "http://127.0.0.1:9/",  # never contacted: the callback fails on its missing cookie first
        "oidc_client_id": "portal",
        "oidc_client_secret": SecretStr("not-a-real-secret"),
        "oidc_redirect_url": "http://localhost/login/oidc/callback",
    }
    with open_web_world(tmp_path, monkeypatch, **settings) as w:
        refused = w.client.get("/login/oidc/callback?state=x&code=y")
        text = refusal_page(refused, 401, "no-pending-sign-in")
        assert "We could not sign you in. Start again from the sign-in page." in text
        assert "cv_oidc=" in refused.headers["set-cookie"]  # the refusal's own headers are kept
        assert _audited_once(w, refused)["action"] == "web.login"


@pytest.mark.parametrize(
    ("error", "status", "sentence"),
    [
        (Conflict("consent"), 409, "This changed since you opened the page. Reload the page and try again."),
        (CitizenErased("erased"), 410, "This profile was erased, so its data is no longer available."),
        (RuntimeError("unexpected"), 500, "Something went wrong on our side."),
    ],
)
def test_conflicts_erasures_and_unexpected_errors_get_pages_with_the_same_headers(
    web: WebWorld, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, sentence: str
) -> None:
    web.sign_in("citizen-0")

    def fail(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(web.vault.consents, "find", fail)
    shown = web.client.get("/portal/consents")
    assert sentence in refusal_page(shown, status)
    _page_headers(shown)
    assert "Traceback" not in shown.text and "unexpected" not in shown.text


def test_an_invalid_address_outside_a_form_gets_a_422_page(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    shown = web.client.get("/portal/access-log?after=-1")
    assert "Part of the page's address is not valid." in refusal_page(shown, 422)


def test_api_routes_keep_problem_json_whatever_the_browser_accepts(web: WebWorld) -> None:
    html = {"Accept": "text/html"}
    problem(web.client.get("/v1/me/consents", headers=html), 401)
    citizen = web.demo_citizens[0]  # type: ignore[index]
    problem(web.client.get("/v1/audit/events", headers={**web.me(citizen), **html}), 403, "policy")
    problem(web.client.get("/v1/no-such-route", headers=html), 404)


def test_no_api_route_shares_a_first_path_segment_with_the_pages(web: WebWorld) -> None:
    roots = web.client.app.state.web_pages.roots  # type: ignore[attr-defined]
    assert {"", "portal", "console", "agency", "login", "logout"} <= roots
    api = list(web.client.get("/openapi.json").json()["paths"])
    assert len(api) >= 20
    assert not [path for path in api if path.split("/", 2)[1] in roots]
