"""The analyst's pages in headless Chromium against a real `citizen-vault serve --demo`: the demo
analyst signs in, lands on /insights, asks a question with the form, sees the answer as an SVG chart
with its table and the budget left, downloads the CSV; every page has its headers and no serious
axe-core violation (issue 15)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine

from tests.support.browser import DemoServer, Web, checked_page, sign_in, visit_page
from tests.support.insights_helpers import DAY, facts, fill
from vault.insights import rollup

ANALYST = "Analyst, Vault operator"  # analyst@vault on the demo sign-in page


@pytest.fixture(scope="module", autouse=True)
def interactions(demo_server: DemoServer) -> None:
    """Three thousand anonymous facts over the last 80 days, written straight into the demo's store
    (the interaction service that writes them in production is not needed for insights)."""
    engine = create_engine(f"sqlite:///{demo_server.data / 'vault.db'}")
    now = int(time.time())
    try:
        fill(engine, facts(3000, start=now - 80 * DAY, days=79))
        rollup.rebuild(engine, now // DAY - 81, now // DAY, now, full=True)  # as the server's Refresher would
    finally:
        engine.dispose()


def test_analyst_asks_a_question_and_reads_the_chart(web: Web) -> None:
    sign_in(web, ANALYST)
    assert web.page.url == web.url("/insights")
    visit_page(web, "/insights", "home")
    page = web.page
    assert page.get_by_text("10 of 10").count() == 1
    page.get_by_label("Channel", exact=True).check()
    page.get_by_label("Time to resolve (median, 90th percentile)", exact=True).uncheck()
    with page.expect_navigation():
        page.get_by_role("button", name="Ask", exact=True).click()
    assert "/insights/releases/" in page.url
    response = page.reload()
    checked_page(web, response, page.url, "release")
    assert page.locator("svg.chart__svg").count() == 1
    assert page.get_by_role("table").count() >= 1
    assert page.get_by_text("9 of 10").count() == 1  # epsilon 1 spent, once: the reload was free
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    text = download.value.path().read_text()
    assert text.startswith("agency,channel,period,count") or text.startswith("agency,channel,count")
    assert web.foreign_requests() == []


def test_a_bad_question_shows_the_error_summary(web: Web) -> None:
    sign_in(web, ANALYST)
    page = web.page
    page.goto("/insights")
    page.get_by_label("Last day", exact=True).fill("2000-01-01")
    with page.expect_navigation():
        page.get_by_role("button", name="Ask", exact=True).click()
    summary = page.get_by_role("alert")
    assert "There is a problem" in summary.inner_text()
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "end" or page.url.endswith("#end")
    web.shot("error")
