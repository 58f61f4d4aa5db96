"""Real-browser tests: a real `citizen-vault serve` with demo data, headless Debian Chromium driven by
Playwright, a fresh context per test, screenshots as artefacts, and axe-core for accessibility.

Playwright's own browser download does not work on these machines: the system's `chromium`
(Debian package, installed by `scripts/bootstrap.sh test`) is launched through ``executable_path``.
Without chromium or playwright the tests skip locally and FAIL under CI=true (tests/support/ci_guard.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.server_proc import CLI, Server, clean_env, free_port, running

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response

CHROMIUM = os.environ.get("CITIZEN_VAULT_CHROMIUM", "/usr/bin/chromium")
# No GPU, no sandbox (containers), and none of the browser's own traffic (updates, sync, QUIC probes):
# every request the tests see is one the page made.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
# Screenshots: gitignored, kept after the run (CI uploads the directory); override with the variable.
ARTIFACTS = Path(os.environ.get("CITIZEN_VAULT_TEST_ARTIFACTS", REPO / "test-artifacts"))
SERIOUS = frozenset({"serious", "critical"})


def missing(what: str) -> NoReturn:
    """Skip for a missing browser dependency locally; under CI=true the same absence is a failure."""
    message = f"{what} (scripts/bootstrap.sh test installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


@dataclass
class DemoServer:
    """`citizen-vault serve --demo` on a free port, over a data directory seeded by `citizen-vault demo`."""

    server: Server
    data: Path
    env: dict[str, str]

    @property
    def base(self) -> str:
        """Its base URL."""
        return self.server.base

    tokens: dict[tuple[str, str | None, str | None], str] = field(default_factory=dict)

    def token(self, role: str, *, agency: str | None = None, subject: str | None = None) -> str:
        """A bearer token from `citizen-vault token`, as an operator script would get one (kept for
        the module: a new process per token would cost more than the browser work)."""
        if (role, agency, subject) in self.tokens:
            return self.tokens[role, agency, subject]
        args = [CLI, "--data-dir", str(self.data), "token", "--role", role]
        args += ["--agency", agency] if agency else []
        args += ["--subject", subject] if subject else []
        done = subprocess.run(args, env=self.env, check=True, capture_output=True, text=True)
        self.tokens[role, agency, subject] = done.stdout.strip()
        return self.tokens[role, agency, subject]

    def api(self, token: str) -> httpx.Client:
        """An HTTP client for the API with ``token`` (close it, or use it in a ``with``)."""
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def citizen_id(self, national_id: str) -> str:
        """The vault id of the demo citizen with ``national_id`` (looked up by the registrar)."""
        with self.api(self.token("registrar", agency="civil-registry")) as http:
            found = http.get("/v1/citizens", params={"national_id": national_id})
        assert found.status_code == 200, found.text
        ids = found.json()["ids"]
        assert len(ids) == 1, ids
        return str(ids[0])


@contextmanager
def seeded_server(tmp: Path, *, citizens: int = 3) -> Iterator[DemoServer]:
    """`citizen-vault demo` into ``tmp``, then `citizen-vault serve --demo` for the ``with`` block."""
    data = tmp / "data"
    port = free_port()
    # The issuer names the address the server answers on, as `make run` does: tokens then match it.
    env = clean_env(CITIZEN_VAULT_ISSUER=f"http://127.0.0.1:{port}")
    seeded = subprocess.run(
        [CLI, "--data-dir", str(data), "demo", "--citizens", str(citizens)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    command = [CLI, "--data-dir", str(data), "serve", *SERVE_DEMO, "--port", str(port)]
    with running(command, env, port, tmp / "server.stderr") as server:
        yield DemoServer(server, data, env)


@dataclass
class Web:
    """One test's browser context and page, the requests they made, and screenshots."""

    base: str
    context: BrowserContext
    page: Page
    name: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the server."""
        return self.base + path

    def record(self, context: BrowserContext) -> None:
        """Record every request ``context`` makes and abort the foreign ones; keep console errors.

        A request the page's CSP blocks never reaches the network layer, so it is no request here:
        the browser reports it as a console error ("Refused to ..."), which is kept as well.
        """
        context.on("request", lambda request: self.requests.append(request.url))
        context.route(lambda url: not self.same_origin(url), lambda route: route.abort())
        context.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` is on the server's origin (data:, blob: and about: URLs stay in the page)."""
        parts, origin = urlsplit(url), urlsplit(self.base)
        local = {"data", "blob", "about"}
        return parts.scheme in local or (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc)

    def foreign_requests(self) -> list[str]:
        """Requests the pages made to anywhere but the server's origin (aborted before they left)."""
        return [url for url in self.requests if not self.same_origin(url)]

    def shot(self, label: str, page: Page | None = None) -> Path:
        """Save a full-page screenshot as a test artefact and return its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}--{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path


def sign_in(web: Web, display_name: str, page: Page | None = None) -> None:
    """Sign in on the development sign-in page as the demo person called ``display_name``."""
    page = page or web.page
    page.goto("/login")
    page.get_by_role("button", name=f"Sign in as {display_name}", exact=True).click()
    page.wait_for_url(lambda url: urlsplit(url).path not in {"/login", "/login/demo"})


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (id, impact, help, nodes).

    axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy does not
    govern: the page is checked exactly as served, CSP on, without `bypass_csp`.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


def checked_page(web: Web, response: Response | None, path: str, label: str) -> None:
    """The page ``response`` answered for ``path``: 200, the security headers, no serious or critical
    axe violation; a screenshot named ``label`` (stable from run to run)."""
    assert response is not None and response.status == 200, (path, response and response.status)
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
    assert "unsafe-inline" not in csp, path
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("referrer-policy") == "no-referrer", path
    assert "text/html" in headers.get("content-type", ""), path
    assert serious_violations(web.page) == [], path
    web.shot(label)


def visit_page(web: Web, path: str, label: str) -> None:
    """Open ``path`` (signed in: not bounced to the sign-in page) and check it as :func:`checked_page`."""
    response = web.page.goto(path)
    assert web.page.url == web.url(path), (path, web.page.url)
    checked_page(web, response, path, label)


# `serve --demo` turns on the demo sign-in (CITIZEN_VAULT_DEMO_LOGIN) for this process only.
SERVE_DEMO = ["--demo"]


# Module scope, not session: Playwright's sync API runs an event loop in this thread while its driver
# is open, and a later test module of the same worker that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver, once per test module (a missing playwright skips locally, fails under CI)."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional until the browser tests run
    except ImportError:
        missing("playwright is not installed")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One headless Chromium per test module."""
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"no chromium at {CHROMIUM}")
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One demo server per test module."""
    with seeded_server(tmp_path_factory.mktemp("demo-server")) as server:
        yield server


@pytest.fixture
def web(browser: Browser, demo_server: DemoServer, request: pytest.FixtureRequest) -> Iterator[Web]:
    """A fresh browser context (no cookies, no storage) and page for one test."""
    context = browser.new_context(base_url=demo_server.base, viewport={"width": 1024, "height": 768})
    # Screenshots are named by module and label (test_portal.py, "my-data" -> portal--my-data.png).
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    context.set_default_timeout(10_000)  # a missing element fails in 10 s, not Playwright's 30
    web = Web(demo_server.base, context, context.new_page(), name)
    web.record(context)
    try:
        yield web
    finally:
        context.close()
