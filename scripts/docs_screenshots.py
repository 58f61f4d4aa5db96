"""Regenerate the small screenshots under docs/screenshots/ (shown in the README) from a demo server.

    PYTHONPATH=. .venv/bin/python scripts/docs_screenshots.py

The browser tests save full-page screenshots of every main page as test artefacts (test-artifacts/,
not committed); these few are viewport-sized JPEGs, small enough to keep in git.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, seeded_server
from vault import demo

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PAGES = [
    ("/portal/data", "portal-data"),
    ("/portal/consents", "portal-consents"),
    ("/portal/requests", "portal-requests"),
]


def main() -> None:
    """Sign in as the first demo citizen, with a consent and a pending request, and shoot each page."""
    OUT.mkdir(parents=True, exist_ok=True)
    p = demo.profile(0)
    with tempfile.TemporaryDirectory() as tmp, seeded_server(Path(tmp)) as server, sync_playwright() as driver:
        citizen_id = server.citizen_id(p["national_id"])
        consent = {"agency": "benefits-office", "purpose": "benefit-eligibility", "categories": ["identity"]}
        with server.api(server.token("citizen", subject=citizen_id)) as me:
            me.post("/v1/me/consents", json=consent).raise_for_status()
        with server.api(server.token("caseworker", agency="benefits-office")) as agency:
            agency.post(
                "/v1/grants", json={"citizen_id": citizen_id, "purpose": consent["purpose"], "fields": ["email"]}
            )
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(base_url=server.base, viewport={"width": 900, "height": 640}).new_page()
        page.goto("/login")
        page.screenshot(path=str(OUT / "login.jpg"), type="jpeg", quality=70)
        page.get_by_role("button", name=f"Sign in as {p['given_name']} {p['family_name']}", exact=True).click()
        page.wait_for_url("**/portal")
        for path, name in PAGES:
            page.goto(path)
            page.screenshot(path=str(OUT / f"{name}.jpg"), type="jpeg", quality=70)
        browser.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
