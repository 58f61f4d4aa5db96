"""A test world for the web pages: the API test world (tests/support/api_world.py) with demo sign-in
on, the demo's first citizens imported, and helpers that act as a browser does (forms, cookies).

Every person is invented (vault/demo.py, tests/support/api_world.py).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from api.settings import AppSettings
from tests.support.api_world import World, fail_fast_on_lock_waits
from vault import demo
from vault.demo_registry import DEMO_CITIZENS, seed_purposes, seed_registry
from vault.runtime import init_vault

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A settable clock for the session store (timeouts without waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


@dataclass
class WebWorld(World):
    """The API world plus the demo citizens' ids and a settable session clock."""

    demo_citizens: list[str] | None = None
    clock: Clock | None = None

    def browser(self) -> TestClient:
        """A second, independent browser (its own cookies) on the same app."""
        return TestClient(self.client.app, raise_server_exceptions=False, follow_redirects=False)

    def csrf(self, page: str = "/login", client: TestClient | None = None) -> str:
        """The CSRF token the forms of ``page`` carry for this browser."""
        response = (client or self.client).get(page)
        assert response.status_code == 200, (page, response.status_code)
        found = _TOKEN.search(response.text)
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def sign_in(self, person: str, client: TestClient | None = None, next_path: str = "") -> Response:
        """Sign in through the development page as ``person`` (a demo key: citizen-0, caseworker@... )."""
        browser = client or self.client
        token = self.csrf("/login", browser)
        form = {"person": person, "csrf_token": token, "next": next_path}
        response: Response = browser.post("/login/demo", data=form, headers=FORM)
        return response

    def post(
        self, path: str, form: dict[str, Any], client: TestClient | None = None, page: str | None = None
    ) -> Response:
        """Send a form as the signed-in browser, with the CSRF token of ``page`` (default: ``path``)."""
        browser = client or self.client
        token = self.csrf(page or path, browser)
        response: Response = browser.post(path, data={"csrf_token": token, **form}, headers=FORM)
        return response


def refusal_page(response: Response, status: int, reason: str | None = None) -> str:
    """Assert a refused page request answered as an HTML page (api/web/error_pages.py) with
    ``status``, this request's id shown for support (and ``reason``); return its text, unescaped
    (to find its sentences: not for checking what it escapes)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert f"<code>{response.headers['x-request-id']}</code>" in response.text
    if reason is not None:
        assert f"(reason: <code>{reason}</code>)" in response.text, response.text
    return html.unescape(response.text)


@contextmanager
def open_web_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[WebWorld]:
    """A fresh vault with the demo's registry, purposes and first citizens; demo sign-in on."""
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    defaults: dict[str, Any] = {"data_dir": tmp_path, "keyring_scrypt_n": 2**10, "demo_login": True}
    app_settings = AppSettings(**(defaults | settings))
    vault = init_vault(app_settings)
    fail_fast_on_lock_waits(vault.data_engine)
    apps = {c.agency: c for c in seed_registry(vault.registry)}
    seed_purposes(vault.purposes)
    citizens = [str(vault.profiles.create(demo.profile(i), "civil-registry")) for i in range(DEMO_CITIZENS)]
    clock = Clock()
    try:
        app = create_app(app_settings, vault)
        app.state.web_sessions.clock = clock
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
            yield WebWorld(client, vault, app_settings, apps, citizens, clock)
    finally:
        vault.close()
