"""Issue 17's rights requests in headless Chromium against a real `citizen-vault serve --demo`: a
citizen asks for a correction on My data, the source agency's registrar applies it, and the citizen
sees it done before the due date; an erasure ends with the rest shredded and the held fields
explained; a restriction asked in the portal stops an agency's grant read until the citizen lifts
it; an overdue request shows in the compliance officer's list. Every new page passes the page
checks (headers, axe-core, screenshot). All people are fictitious."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tests.support.browser import DemoServer, Web, checked_page, sign_in, visit_page
from tests.support.grants_helpers import Clock, citizen_actor
from vault import demo
from vault.requests.handling import RequestDesk
from vault.runtime import open_vault
from vault.settings import Settings

if TYPE_CHECKING:  # imported by the fixtures, which skip (or fail under CI) without playwright
    from playwright.sync_api import Browser, Page

REGISTRAR = "Registrar, Civil Registry"
OFFICER = "Compliance officer, Vault operator"
NEW_ADDRESS = "8 Corrected Close, Nowhereville"


def _citizen(server: DemoServer, i: int) -> tuple[str, str]:
    p = demo.profile(i)
    return server.citizen_id(p["national_id"]), f"{p['given_name']} {p['family_name']}"


def _main(page: Page) -> str:
    return page.locator("main").inner_text()


@contextmanager
def _other(browser: Browser, server: DemoServer) -> Iterator[Page]:
    """A second person's browser (its own cookies)."""
    context = browser.new_context(base_url=server.base, viewport={"width": 1024, "height": 768})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_correction_is_applied_by_the_source_agency_and_seen_done_before_it_is_due(
    web: Web, browser: Browser, demo_server: DemoServer
) -> None:
    _, name = _citizen(demo_server, 0)
    sign_in(web, name)
    web.page.goto("/portal/data")
    web.page.get_by_role("link", name="Ask for a correction of address").click()
    checked_page(web, web.page.reload(), "/portal/rights/correct", "ask-correction")
    web.page.get_by_label("What should it say?").fill(NEW_ADDRESS)
    web.page.get_by_label("Why (optional)").fill("I moved last month")
    web.page.get_by_role("button", name="Send the request").click()
    web.page.wait_for_url("**/portal/rights/*?done=submitted")
    request_path = web.page.url.split("?")[0].removeprefix(demo_server.base)
    assert NEW_ADDRESS not in _main(web.page) and "I moved last month" in _main(web.page)

    with _other(browser, demo_server) as officer:
        sign_in(web, REGISTRAR, officer)
        officer.goto("/agency/rights")
        officer.locator(f"a[href='{request_path.replace('/portal/', '/agency/')}']").click()
        assert NEW_ADDRESS not in _main(officer), "the proposed value is shown only when deciding"
        officer.get_by_role("link", name="See the proposed value to decide").click()
        assert NEW_ADDRESS in _main(officer)
        officer.get_by_role("button", name="Accept and apply the correction").click()
        officer.wait_for_url("**?done=accept")
        assert "complete" in _main(officer)

    visit_page(web, request_path, "request-done")
    shown = _main(web.page)
    assert "complete" in shown and "the correction was applied" in shown
    with demo_server.api(demo_server.token("citizen", subject=_citizen(demo_server, 0)[0])) as me:
        [done] = [r for r in me.get("/v1/me/requests").json() if r["id"] == request_path.rsplit("/", 1)[1]]
        assert done["status"] == "complete" and done["updated_at"] < done["due_at"]
        assert me.get("/v1/me").json()["fields"]["address"] == NEW_ADDRESS
    visit_page(web, "/portal/rights", "my-requests")
    visit_page(web, "/portal/data", "my-data-with-corrections")


def test_an_erasure_shreds_the_rest_and_explains_the_held_fields(
    web: Web, browser: Browser, demo_server: DemoServer
) -> None:
    citizen_id, name = _citizen(demo_server, 1)
    sign_in(web, name)
    visit_page(web, "/portal/rights/erasure", "ask-erasure")
    before = _main(web.page)
    assert "What will be kept, and why" in before and "Civil Registration Act" in before
    web.page.get_by_label("I understand what will be erased and what will be kept").check()
    web.page.get_by_role("button", name="Ask for erasure").click()
    web.page.wait_for_url("**/portal/rights/*?done=submitted")
    request_id = web.page.url.split("?")[0].rsplit("/", 1)[1]

    with _other(browser, demo_server) as officer:
        sign_in(web, REGISTRAR, officer)
        officer.goto(f"/agency/rights/{request_id}")
        officer.get_by_role("button", name="Approve").click()
        officer.wait_for_url("**?done=approve")
        officer.get_by_role("button", name="Carry out the erasure").click()
        officer.wait_for_url("**?done=complete")
        outcome = _main(officer)
        assert "Kept: given_name, because Civil Registration Act" in outcome
        assert "Erased (made unreadable for good): " in outcome and "email" in outcome

    with demo_server.api(demo_server.token("citizen", subject=citizen_id)) as me:
        found = me.get(f"/v1/me/requests/{request_id}").json()
        assert found["status"] == "complete"
        assert set(found["detail"]["outcome"]["held"]) == {"given_name", "family_name", "date_of_birth"}
        assert "email" in found["detail"]["outcome"]["destroyed"]
        assert set(me.get("/v1/me").json()["fields"]) == {"given_name", "family_name", "date_of_birth"}


def test_a_restriction_stops_the_agencys_read_until_the_citizen_lifts_it(web: Web, demo_server: DemoServer) -> None:
    citizen_id, name = _citizen(demo_server, 2)
    with demo_server.api(demo_server.token("caseworker", agency="tax-office")) as tax:
        grant = tax.post(
            "/v1/grants",
            json={"citizen_id": citizen_id, "purpose": "tax-assessment", "fields": ["income"], "max_uses": 5},
        ).json()
        read = f"/v1/grants/{grant['id']}/data"
        assert tax.get(read).status_code == 200
        sign_in(web, name)
        visit_page(web, "/portal/rights/restrict", "ask-restriction")
        web.page.get_by_label("Restrict the use (for example while you contest its accuracy)").check()
        web.page.locator("input[name=purposes][value=tax-assessment]").check()
        web.page.get_by_role("button", name="Send the request").click()
        web.page.wait_for_url("**/portal/rights/*?done=submitted")
        request_id = web.page.url.split("?")[0].rsplit("/", 1)[1]
        for step in ("approve", "complete"):  # by the tax office, which uses the purpose
            assert tax.post(f"/v1/requests/{request_id}/{step}").status_code == 200
        refused = tax.get(read)
        assert refused.status_code == 403 and refused.json()["reason"] == "processing-restricted"

        web.page.reload()
        web.page.get_by_role("button", name="Lift the restriction").click()
        web.page.wait_for_url("**?done=withdrawn")
        assert tax.get(read).status_code == 200


def test_an_overdue_request_shows_in_the_compliance_officers_list(web: Web, demo_server: DemoServer) -> None:
    citizen_id, _ = _citizen(demo_server, 2)
    vault = open_vault(Settings(data_dir=demo_server.data, keyring_scrypt_n=1024))
    try:  # a request submitted 40 days ago, through the service with its clock set back
        v = vault
        clock = Clock(datetime.now(UTC) - timedelta(days=40))
        past = RequestDesk(v.data_engine, v.dekstore, v.catalogue, v.profiles, v.purposes, v.audit, clock)
        made = past.submit(citizen_actor(citizen_id), citizen_id, "restriction", purposes=["emergency-care"])
    finally:
        vault.close()
    sign_in(web, OFFICER)
    visit_page(web, "/console/requests", "overdue")
    count = int(web.page.locator("#overdue-count").inner_text())
    assert count >= 1 and made.id in _main(web.page)


def test_the_officers_pages_pass_the_page_checks(web: Web, demo_server: DemoServer) -> None:
    citizen_id, _ = _citizen(demo_server, 0)
    with demo_server.api(demo_server.token("citizen", subject=citizen_id)) as me:
        made = me.post(
            "/v1/me/requests",
            json={"kind": "rectification", "fields": {"phone": "+999 555 0777"}, "message": "New number"},
        )
        assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    sign_in(web, REGISTRAR)
    visit_page(web, "/agency/rights", "agency-queue")
    visit_page(web, f"/agency/rights/{request_id}", "agency-request")
    visit_page(web, f"/agency/rights/{request_id}/decide", "agency-decide")
    assert "+999 555 0777" in _main(web.page)
