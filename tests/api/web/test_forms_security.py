"""CSRF on every state-changing form, no open redirect through ``next``, and demo sign-in only in
demo mode outside production. All people are fictitious."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.security.sessions import local_path
from api.settings import AppSettings
from tests.support.web_world import FORM, WebWorld, open_web_world, refusal_page

BENEFITS = {"choice": "benefits-office|benefit-eligibility", "expires": ""}


def _consents(web: WebWorld, citizen: str) -> list[dict[str, object]]:
    listed = web.client.get("/v1/me/consents", headers=web.me(citizen))
    assert listed.status_code == 200
    rows: list[dict[str, object]] = listed.json()
    return rows


def test_a_form_without_a_csrf_token_is_refused_and_changes_nothing(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    refused = web.client.post("/portal/consents", data=BENEFITS, headers=FORM)
    refusal_page(refused, 403, "csrf")
    assert _consents(web, web.demo_citizens[0]) == []  # type: ignore[index]
    event = web.refusal_event(refused)
    assert (event["action"], event["reason"]) == ("me-consents.create", "csrf")


def test_a_form_with_another_sessions_token_is_refused_and_changes_nothing(web: WebWorld) -> None:
    citizen = web.demo_citizens[0]  # type: ignore[index]
    web.sign_in("citizen-0")
    assert web.post("/portal/consents", BENEFITS, page="/portal/consents/new").status_code == 303
    (consent,) = _consents(web, citizen)
    other = web.browser()
    web.sign_in("citizen-0", other)  # the same citizen, another session: its token is not this one's
    foreign = web.csrf("/portal/consents", other)
    refused = web.client.post(f"/portal/consents/{consent['id']}/withdraw", data={"csrf_token": foreign}, headers=FORM)
    assert refused.status_code == 403
    assert [c["status"] for c in _consents(web, citizen)] == ["active"]
    logout = web.client.post("/logout", data={"csrf_token": foreign}, headers=FORM)
    assert logout.status_code == 403 and web.client.get("/portal").status_code == 200  # still signed in


def test_demo_sign_in_needs_the_pre_session_token_of_this_browser(web: WebWorld) -> None:
    elsewhere = web.csrf("/login", web.browser())
    web.csrf("/login")  # this browser has its own pre-session cookie
    for form in ({"person": "citizen-0"}, {"person": "citizen-0", "csrf_token": elsewhere}):
        refused = web.client.post("/login/demo", data=form, headers=FORM)
        refusal_page(refused, 403, "csrf")
        assert "cv_session" not in refused.cookies
    assert web.client.get("/portal").status_code == 303


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example", ""]
)
def test_next_never_leaves_the_site(web: WebWorld, target: str) -> None:
    signed_in = web.sign_in("citizen-0", next_path=target)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal"
    page = web.client.get("/login", params={"next": target})
    assert 'name="next" value=""' in page.text or target == ""


def test_next_keeps_a_path_on_this_site(web: WebWorld) -> None:
    asked = web.client.get("/portal/access-log?after=0")
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=/portal/access-log%3Fafter%3D0"
    signed_in = web.sign_in("citizen-0", next_path="/portal/access-log?after=0")
    assert signed_in.headers["location"] == "/portal/access-log?after=0"


def test_local_path_accepts_only_single_slash_paths() -> None:
    assert local_path("/portal/data") == "/portal/data"
    for bad in ("//x", "/\\x", "https://x", "x", "/a\nb", "/" + "a" * 600, None):
        assert local_path(bad, "/home") == "/home"


def test_without_demo_mode_there_is_no_demo_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_web_world(tmp_path, monkeypatch, demo_login=False) as w:
        page = w.client.get("/login")
        assert page.status_code == 200 and "Development only" not in page.text and "citizen-0" not in page.text
        attempt = w.client.post("/login/demo", data={"person": "citizen-0", "csrf_token": "any"}, headers=FORM)
        assert attempt.status_code == 404 and "cv_session" not in attempt.cookies


def test_demo_mode_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="development only"):
        AppSettings(data_dir=tmp_path, environment="production", demo_login=True)
