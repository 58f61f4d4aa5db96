"""The analyst's pages: a question is a CSRF-checked form that spends budget once, its answer a
stored release with a chart and its table, free to see again (issue 15)."""

from __future__ import annotations

import re

from tests.support.insights_helpers import facts, fill
from tests.support.web_world import FORM, WebWorld, refusal_page

ASK = {"by": "agency", "period": "month", "start": "2026-03-01", "end": "2026-05-31", "epsilon": "1"}
_RELEASE = re.compile(r"^/insights/releases/([0-9a-f-]{36})$")


def _signed_in(web: WebWorld) -> None:
    fill(web.vault.data_engine, facts(3000))
    web.client.app.state.insights.refresh(full=True)  # type: ignore[attr-defined]  # as the server's Refresher would
    response = web.sign_in("analyst@vault")
    assert response.status_code == 303 and response.headers["location"] == "/insights", response.text


def test_analyst_asks_and_sees_a_chart_with_its_table(web: WebWorld) -> None:
    _signed_in(web)
    home = web.client.get("/insights")
    assert home.status_code == 200 and "10 of 10" in home.text  # the whole budget, shown
    response = web.post("/insights", {**ASK, "metrics": ["ack_time", "satisfaction"]})
    assert response.status_code == 303, response.text
    found = _RELEASE.match(response.headers["location"])
    assert found
    page = web.client.get(response.headers["location"])
    assert page.status_code == 200
    assert "<svg" in page.text and "public-works · 2026-03" in page.text and "Mean rating" in page.text
    assert "9 of 10" in page.text  # what is left after epsilon 1
    again = web.client.get(response.headers["location"])
    assert "9 of 10" in again.text  # seeing it again spends nothing
    csv = web.client.get(f"/insights/releases/{found.group(1)}/csv")
    assert csv.status_code == 200 and csv.text.startswith("agency,period,count")


def test_bad_question_shows_the_error_summary_and_keeps_what_was_typed(web: WebWorld) -> None:
    _signed_in(web)
    response = web.post("/insights", {**ASK, "end": "2026-02-01"})
    assert response.status_code == 422
    assert "There is a problem" in response.text and 'href="#end"' in response.text
    assert 'value="2026-02-01"' in response.text
    response = web.post("/insights", {**ASK, "epsilon": "lots"})
    assert response.status_code == 422 and 'href="#epsilon"' in response.text


def test_spent_budget_is_refused_on_the_form(web: WebWorld) -> None:
    _signed_in(web)
    for _ in range(5):
        assert web.post("/insights", {**ASK, "epsilon": "2"}).status_code == 303
    response = web.post("/insights", ASK)
    assert response.status_code == 403 and "Your privacy budget is spent" in response.text


def test_form_without_csrf_token_is_refused(web: WebWorld) -> None:
    _signed_in(web)
    response = web.client.post("/insights", data=ASK, headers=FORM)
    refusal_page(response, 403, "csrf")


def test_other_roles_cannot_open_insights(web: WebWorld) -> None:
    web.sign_in("caseworker@benefits-office")
    refusal_page(web.client.get("/insights"), 403)
