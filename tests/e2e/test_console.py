"""Issue 14, "Show" 4, and the compliance console's pages, in headless Chromium against a real
`citizen-vault serve --demo`: a compliance officer filters the access log, finds the read refused
after a withdrawal (scenario 1) and the reads of an approved request (scenario 3), opens an event,
verifies the chain, and downloads the CSV export; every main console page has its headers, makes no
foreign request, has nothing refused by the CSP and no serious axe-core violation.

The scenarios themselves are set up through the HTTP API with operator tokens (test_portal.py plays
them in the portal); only the officer's side is in the browser here."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import DemoServer, Web, serious_violations, sign_in, visit_page
from vault import demo

if TYPE_CHECKING:  # imported by the fixtures, which skip (or fail under CI) without playwright
    from playwright.sync_api import Page

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}
OFFICER = "Compliance officer, Vault operator"  # compliance@vault on the demo sign-in page
CONSOLE_PAGES = ["/console", "/console/events", "/console/integrity", "/console/reports", "/console/flags"]


@dataclass
class Scenarios:
    """What scenarios 1 and 3 left in the log: the citizens and the grants they went through."""

    withdrawn_citizen: str
    withdrawn_grant: str
    approved_citizen: str
    approved_grant: str


@pytest.fixture(scope="module")
def scenarios(demo_server: DemoServer) -> Scenarios:
    """Scenario 1 (a consent withdrawn, the next read through its grant refused) and scenario 3 (a
    request needing consent, approved by the citizen, then read), played once through the API."""
    server = demo_server
    first = server.citizen_id(demo.profile(0)["national_id"])
    third = server.citizen_id(demo.profile(2)["national_id"])
    with server.api(server.token("caseworker", agency="benefits-office")) as agency:
        with server.api(server.token("citizen", subject=first)) as me:
            consent = me.post("/v1/me/consents", json=BENEFITS)
            assert consent.status_code == 201, consent.text
            grant = agency.post(
                "/v1/grants",
                json={"citizen_id": first, "purpose": BENEFITS["purpose"], "fields": ["email"], "max_uses": 5},
            )
            assert grant.status_code == 201 and grant.json()["status"] == "active", grant.text
            withdrawn_grant = str(grant.json()["id"])
            assert agency.get(f"/v1/grants/{withdrawn_grant}/data").status_code == 200
            assert me.delete(f"/v1/me/consents/{consent.json()['id']}").status_code == 200
        refused = agency.get(f"/v1/grants/{withdrawn_grant}/data")
        assert refused.status_code == 403 and refused.json()["reason"] == "grant-revoked", refused.text

        asked = agency.post(
            "/v1/grants", json={"citizen_id": third, "purpose": BENEFITS["purpose"], "fields": ["email", "income"]}
        )
        assert asked.status_code == 403 and asked.json()["reason"] == "consent-required", asked.text
        approved_grant = str(asked.json()["grant_id"])
        with server.api(server.token("citizen", subject=third)) as me:
            assert me.post(f"/v1/me/grant-requests/{approved_grant}/approve").status_code == 200
        assert agency.get(f"/v1/grants/{approved_grant}/data").status_code == 200
    return Scenarios(first, withdrawn_grant, third, approved_grant)


def _filter(page: Page, **values: str) -> None:
    """Fill the access log's filter form (blank the rest) and submit it."""
    page.goto("/console/events")
    for label in ("Citizen", "Action"):
        page.get_by_label(label, exact=True).fill(values.get(label.lower(), ""))
    page.get_by_label("Outcome", exact=True).select_option(values.get("outcome", ""))
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url("**/console/events?*")


def _rows(page: Page) -> list[list[str]]:
    """The access log table's rows as cell texts (No., time, actor, agency, action, citizen, purpose,
    outcome, reason)."""
    cells: list[list[str]] = page.locator("main table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return cells


def _detail(page: Page) -> dict[str, str]:
    """An event's detail page as {key: value} (its summary list)."""
    pairs: list[list[str]] = page.locator("main dl div").evaluate_all(
        "rows => rows.map(r => [r.querySelector('dt').innerText.trim(), r.querySelector('dd').innerText.trim()])"
    )
    return dict((k, v) for k, v in pairs)


def test_an_officer_filters_the_log_finds_the_refused_and_approved_reads_verifies_and_exports_csv(
    web: Web, scenarios: Scenarios
) -> None:
    done = scenarios
    sign_in(web, OFFICER)
    page = web.page
    page.goto("/console")
    page.get_by_role("link", name="Access log").first.click()

    # By citizen: scenario 1's citizen, every outcome: the reads through the grant before the
    # withdrawal, and the withdrawal itself.
    _filter(page, citizen=done.withdrawn_citizen)
    rows = _rows(page)
    assert rows and all(row[5] == done.withdrawn_citizen for row in rows), rows
    assert {"consents.withdraw", "grants.read"} <= {row[4] for row in rows}, rows
    web.shot("log-by-citizen")

    # By outcome: the refused read, with the reason the agency was given.
    _filter(page, action="grants.read", outcome="denied")
    rows = _rows(page)
    assert rows and all(row[7] == "denied" for row in rows), rows
    refused = [row for row in rows if row[8] == "grant-revoked"]
    assert refused, rows
    web.shot("log-denied-reads")
    # Its detail names scenario 1's grant: the refused read is the one through the withdrawn consent.
    page.get_by_role("link", name=refused[0][0], exact=True).click()
    page.wait_for_url(f"**/console/events/{refused[0][0]}")
    detail = _detail(page)
    assert detail["Grant"] == done.withdrawn_grant and detail["Outcome"] == "denied", detail
    assert detail["Reason"] == "grant-revoked" and detail["Action"] == "grants.read", detail
    web.shot("event-detail")

    # By citizen and outcome: scenario 3's allowed read, through the approved grant.
    _filter(page, citizen=done.approved_citizen, action="grants.read", outcome="allowed")
    rows = _rows(page)
    assert len(rows) == 1 and rows[0][5] == done.approved_citizen and rows[0][7] == "allowed", rows
    page.get_by_role("link", name=rows[0][0], exact=True).click()
    detail = _detail(page)
    assert detail["Grant"] == done.approved_grant and detail["Fields"] == "email, income", detail

    # Verify now: the whole chain re-walked, intact.
    page.goto("/console/integrity")
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url("**/console/integrity?verified=1")
    assert page.get_by_role("status").inner_text().startswith("Verification finished")
    assert "intact" in page.locator("main .tag").first.inner_text()
    assert "Nothing was edited, removed, inserted or reordered" in page.locator("main").inner_text()
    web.shot("integrity-verified")

    # The CSV export of every grant read parses and holds both scenarios' reads.
    page.goto("/console/export")
    page.get_by_label("Action", exact=True).fill("grants.read")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    table = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert table and {row["action"] for row in table} == {"grants.read"}
    by_grant = {(row["grant_id"], row["outcome"], row["reason"], row["citizen_id"]) for row in table}
    # The refused read names no citizen today (the grant's read is refused before its citizens are
    # known): a later fix that names the grant's one citizen must not break this test.
    refusals = {(g, o, r) for g, o, r, c in by_grant if c in ("", done.withdrawn_citizen)}
    assert (done.withdrawn_grant, "denied", "grant-revoked") in refusals, by_grant
    assert (done.withdrawn_grant, "allowed", "", done.withdrawn_citizen) in by_grant, by_grant
    assert (done.approved_grant, "allowed", "", done.approved_citizen) in by_grant, by_grant
    assert web.foreign_requests() == []


def _check_page(web: Web, path: str, label: str | None = None) -> None:
    visit_page(web, path, label or path.strip("/").replace("/", "-"))


def test_every_console_page_has_the_headers_no_foreign_request_no_csp_refusal_and_no_serious_axe_violation(
    web: Web, scenarios: Scenarios
) -> None:
    assert scenarios.withdrawn_grant  # a log with allowed and refused reads to show
    sign_in(web, OFFICER)
    for path in CONSOLE_PAGES:
        _check_page(web, path)
    web.page.goto("/console/events")
    first = web.page.locator("main table tbody tr a").first.inner_text()
    _check_page(web, f"/console/events/{first}", "console-event")
    _check_page(web, "/console/events?outcome=denied&action=grants.read", "console-events-filtered")
    _check_page(web, "/console/export")
    # The error states: a filter refused, explained above the form.
    response = web.page.goto("/console/events?citizen=not-an-id")
    assert response is not None and response.status == 422
    assert "Enter a citizen's vault id" in web.page.get_by_role("alert").inner_text()
    assert serious_violations(web.page) == []
    web.shot("console-events-error")
    web.page.goto("/console/integrity")
    web.page.get_by_role("button", name="Verify now").click()
    web.page.wait_for_url("**/console/integrity?verified=1")
    assert serious_violations(web.page) == []
    assert web.foreign_requests() == []
    # The CSP refused nothing (no inline script or style anywhere); the one error is the 422 asked for.
    assert web.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
