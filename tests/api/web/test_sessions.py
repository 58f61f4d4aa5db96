"""Web sessions: cookie flags, no fixation, idle and absolute timeouts, sign-out that ends the
session on the server, and the sign-in rate limit. All people are fictitious."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.web_world import FORM, WebWorld, open_web_world

COOKIE = "cv_session"


def _set_cookies(response: object) -> list[str]:
    return list(response.headers.get_list("set-cookie"))  # type: ignore[attr-defined]


def test_the_session_cookie_is_httponly_samesite_lax_on_path_root(web: WebWorld) -> None:
    signed_in = web.sign_in("citizen-0")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal"
    (cookie,) = [c for c in _set_cookies(signed_in) if c.startswith(f"{COOKIE}=")]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= flags
    assert "secure" not in flags  # plain http (a local demo): a Secure cookie would never come back
    assert not any(f.startswith(("domain=", "max-age", "expires")) for f in flags)  # host-only, browser session


def test_under_https_the_cookie_is_secure_and_host_prefixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_web_world(tmp_path, monkeypatch, issuer="https://vault.example") as w:
        browser = TestClient(w.client.app, base_url="https://vault.example", follow_redirects=False)
        signed_in = w.sign_in("citizen-0", browser)
        assert signed_in.status_code == 303, signed_in.text
        (cookie,) = [c for c in _set_cookies(signed_in) if c.startswith("__Host-cv_session=")]
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=lax"} <= flags
        assert browser.get("/portal").status_code == 200


def test_a_session_id_set_before_sign_in_is_not_kept(web: WebWorld) -> None:
    web.client.cookies.set(COOKIE, "chosen-by-an-attacker")
    signed_in = web.sign_in("citizen-0")
    assert signed_in.status_code == 303
    issued = signed_in.cookies.get(COOKIE)
    assert issued and issued != "chosen-by-an-attacker"
    planted = web.browser()
    planted.cookies.set(COOKIE, "chosen-by-an-attacker")
    assert planted.get("/portal").status_code == 303  # the planted id names no session


def test_signing_in_again_ends_the_session_the_browser_carried(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    first = web.client.cookies.get(COOKIE)
    web.sign_in("citizen-1")
    second = web.client.cookies.get(COOKIE)
    assert first and second and first != second
    old = web.browser()
    old.cookies.set(COOKIE, first)
    assert old.get("/portal").status_code == 303


def test_a_session_ends_after_the_idle_timeout(web: WebWorld) -> None:
    assert web.clock is not None
    web.sign_in("citizen-0")
    web.clock.advance(minutes=14)
    assert web.client.get("/portal").status_code == 200  # a request: the idle time starts again
    web.clock.advance(minutes=14)
    assert web.client.get("/portal").status_code == 200
    web.clock.advance(minutes=15)
    gone = web.client.get("/portal/data")
    assert gone.status_code == 303 and gone.headers["location"] == "/login?next=/portal/data"


def test_a_session_ends_after_the_absolute_timeout_however_busy(web: WebWorld) -> None:
    assert web.clock is not None
    web.sign_in("citizen-0")
    for _ in range(47):  # a request every ten minutes for 7 h 50 min
        web.clock.advance(minutes=10)
        assert web.client.get("/portal").status_code == 200
    web.clock.advance(minutes=10)
    assert web.client.get("/portal").status_code == 303


def test_sign_out_ends_the_session_on_the_server(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    session_id = web.client.cookies.get(COOKIE)
    out = web.post("/logout", {}, page="/portal")
    assert out.status_code == 303 and out.headers["location"] == "/"
    replay = web.browser()
    replay.cookies.set(COOKIE, session_id or "")
    assert replay.get("/portal").status_code == 303  # the old cookie is worthless
    actions = [e["action"] for e in web.events()]
    assert actions.count("web.login") == 1 and actions.count("web.logout") == 1


def test_sign_in_is_audited_with_its_outcome(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    stranger = web.browser()
    form = {"person": "nobody", "csrf_token": web.csrf("/login", stranger)}
    assert stranger.post("/login/demo", data=form, headers=FORM).status_code == 400
    logins = [e for e in web.events() if e["action"] == "web.login"]
    assert [(e["outcome"], e["reason"]) for e in logins] == [("allowed", None), ("denied", "unknown-person")]
    assert logins[0]["actor"] == web.demo_citizens[0]  # type: ignore[index]


def test_sign_in_is_rate_limited_per_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_web_world(tmp_path, monkeypatch, web_logins_per_minute=2) as w:
        assert w.sign_in("citizen-0").status_code == 303
        assert w.sign_in("citizen-1").status_code == 303
        limited = w.sign_in("citizen-2")
        assert limited.status_code == 429 and "retry-after" in limited.headers
        assert any(e["action"] == "web.login" and e["reason"] == "sign-in-rate" for e in w.events(outcome="denied"))
