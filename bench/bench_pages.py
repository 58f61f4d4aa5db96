"""Time from navigation to the citizen portal's first contentful paint in headless Chromium.

A real `citizen-vault serve --demo` with demo data (tests/support/browser.py), Debian's chromium
driven by Playwright, one signed-in citizen; each run navigates to the page again (a warm HTTP
cache, as a citizen moving between pages) and reads the browser's own `first-contentful-paint`
entry. Prints the median, minimum and maximum of ``--runs`` navigations per page.

    .venv/bin/python -m bench.bench_pages --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, seeded_server
from vault import demo

PAGES = ["/portal", "/portal/data", "/portal/consents"]
FCP = "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)"


def first_paint(page: Page, path: str) -> float:
    """Navigate to ``path`` and return its first contentful paint, in ms after navigation start."""
    page.goto(path)
    # Polled from here: wait_for_function evaluates its predicate in the page, which the CSP forbids.
    for _ in range(500):
        paints: list[float] = page.evaluate(FCP)
        if paints:
            return paints[0]
        page.wait_for_timeout(10)
    raise RuntimeError(f"no first-contentful-paint entry for {path}")


def main() -> None:
    """Start a demo server, sign in as the first demo citizen, time each page's first paint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    p = demo.profile(0)
    with tempfile.TemporaryDirectory() as tmp, seeded_server(Path(tmp)) as server, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=server.base)
        page = context.new_page()
        page.goto("/login")
        page.get_by_role("button", name=f"Sign in as {p['given_name']} {p['family_name']}", exact=True).click()
        page.wait_for_url("**/portal")
        print(f"Chromium {browser.version}, {args.runs} navigations per page (after one warm-up)\n")
        print("| page | FCP median (ms) | min | max |\n|---|---|---|---|")
        for path in PAGES:
            first_paint(page, path)  # warm-up: templates compiled, connection open
            times = [first_paint(page, path) for _ in range(args.runs)]
            print(f"| `{path}` | {statistics.median(times):.1f} | {min(times):.1f} | {max(times):.1f} |")
        browser.close()


if __name__ == "__main__":
    main()
