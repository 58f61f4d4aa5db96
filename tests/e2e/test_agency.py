"""Issue 14's agency console in headless Chromium against a real `citizen-vault serve --demo`:
scenario 3 played entirely in pages (a caseworker requests a grant that needs consent in /agency,
the citizen approves it in /portal/requests, the caseworker reads exactly the granted fields), a
registrar corrects a profile with the keyboard alone, and every main agency page has its headers,
makes no foreign request, has nothing refused by the CSP and no serious axe-core violation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.browser import DemoServer, Web, checked_page, serious_violations, sign_in, visit_page
from vault import demo

if TYPE_CHECKING:  # imported by the fixtures, which skip (or fail under CI) without playwright
    from playwright.sync_api import Page, Response

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}
BENEFITS_WORDS = "Decide eligibility for housing and income benefits"  # the purpose's description
CASEWORKER = "Caseworker, Benefits Office"  # caseworker@benefits-office on the demo sign-in page
REGISTRAR = "Registrar, Civil Registry"  # registrar@civil-registry


def _name(i: int) -> str:
    p = demo.profile(i)
    return f"{p['given_name']} {p['family_name']}"


def _main(page: Page) -> str:
    return page.locator("main").inner_text()


def _table(page: Page) -> tuple[list[str], list[list[str]]]:
    """The main table's column titles and rows, as texts."""
    table = page.locator("main table")
    head: list[str] = table.locator("thead th").all_inner_texts()
    rows: list[list[str]] = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return [h.strip() for h in head], rows


def test_a_grant_requested_in_the_agency_console_and_approved_in_the_portal_reads_exactly_the_granted_fields(
    web: Web, demo_server: DemoServer
) -> None:
    profile = demo.profile(2)
    citizen_id = demo_server.citizen_id(profile["national_id"])
    page = web.page
    sign_in(web, CASEWORKER)
    page.goto("/agency")
    page.get_by_role("main").get_by_role("link", name="Request a grant").click()
    page.get_by_label(BENEFITS_WORDS).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("Income", exact=True).check()
    page.get_by_label("Which citizens?").fill(profile["national_id"])
    page.get_by_label("How many reads?").fill("2")
    web.shot("grant-form-filled")
    page.get_by_role("button", name="Request the grant").click()
    page.wait_for_url("**/agency/grants/*?done=requested")
    grant_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    # Waiting for the citizen, said in plain words; nothing to read yet.
    assert "Waiting for the citizen's consent." in _main(page)
    assert "The citizen sees this request in their portal and can approve it" in _main(page)
    assert page.get_by_role("button", name="Read the data").count() == 0
    web.shot("grant-pending")

    # The citizen, in another browser, approves the request in the portal.
    browser = web.context.browser
    assert browser is not None
    citizen = browser.new_context(base_url=demo_server.base)
    try:
        portal = citizen.new_page()
        sign_in(web, _name(2), portal)
        portal.goto("/portal/requests")
        card = portal.locator("section.card", has=portal.locator(f"#request-{grant_id}"))
        assert "email, income" in card.inner_text()
        card.get_by_role("button", name="Approve this request").click()
        portal.wait_for_url("**/portal/requests?done=approved")
    finally:
        citizen.close()

    page.reload()
    assert "Active: the data can be read." in _main(page)
    page.get_by_role("button", name="Read the data").click()
    page.get_by_role("heading", name="Granted data").wait_for()
    head, rows = _table(page)
    assert head == ["Vault id", "Email", "Income"]  # exactly the granted fields, no other
    assert rows == [[citizen_id, profile["email"], str(profile["income"])]]
    assert "1 of 2 reads used" in _main(page)
    web.shot("grant-data")
    assert web.foreign_requests() == []


def _tab_to(page: Page, test: str, what: str) -> None:
    """Press Tab until the focused element passes ``test`` (a JavaScript predicate on it)."""
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => Boolean({test}))(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {what}")


def test_a_registrar_finds_and_corrects_a_profile_with_the_keyboard_alone(web: Web, demo_server: DemoServer) -> None:
    profile = demo.profile(1)
    citizen_id = demo_server.citizen_id(profile["national_id"])
    new_phone = "+999 555 7777"
    sign_in(web, REGISTRAR)
    page = web.page
    page.goto("/agency")

    _tab_to(page, "el.innerText === 'Find a citizen' && el.closest('main')", "the Find a citizen link")
    page.keyboard.press("Enter")
    page.wait_for_url("**/agency/citizens")
    _tab_to(page, "el.id === 'value'", "the Value box")
    page.keyboard.type(profile["national_id"])
    page.keyboard.press("Enter")  # submits the search form
    page.get_by_role("heading", name="Results").wait_for()
    _tab_to(page, f"el.innerText === '{citizen_id}'", "the citizen found")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/agency/citizens/{citizen_id}")
    _tab_to(page, "el.innerText === 'Correct this profile'", "the correction link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/agency/citizens/{citizen_id}/correct")
    _tab_to(page, "el.id === 'phone'", "the Phone box")
    page.keyboard.press("Control+A")
    page.keyboard.type(new_phone)
    _tab_to(page, "el.innerText === 'Save corrections'", "the Save button")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/agency/citizens/{citizen_id}?done=1")

    assert page.get_by_role("status").inner_text() == "The profile was corrected."
    phone = page.locator("main .summary-list__row", has_text="Phone")
    assert new_phone in phone.inner_text() and "From civil-registry" in phone.inner_text()
    with demo_server.api(demo_server.token("registrar", agency="civil-registry")) as registrar:
        stored = registrar.get(f"/v1/citizens/{citizen_id}").json()
    assert stored["fields"]["phone"] == new_phone
    assert {k: v for k, v in stored["fields"].items() if k != "phone"} == {
        k: v for k, v in profile.items() if k != "phone"
    }
    web.shot("corrected-by-keyboard")


def _checked(web: Web, response: Response | None, path: str) -> None:
    """The page ``response`` answered: checked as every main page is (tests/support/browser.py)."""
    checked_page(web, response, path, path)


def _visit(web: Web, label: str, path: str) -> None:
    """Open ``path`` and check it; its screenshot is named ``label`` (stable from run to run)."""
    visit_page(web, path, label)


def test_every_agency_page_has_the_headers_no_foreign_request_no_csp_refusal_and_no_serious_axe_violation(
    web: Web, demo_server: DemoServer
) -> None:
    profile = demo.profile(0)
    citizen_id = demo_server.citizen_id(profile["national_id"])
    with demo_server.api(demo_server.token("citizen", subject=citizen_id)) as me:
        assert me.post("/v1/me/consents", json=BENEFITS).status_code == 201
    with demo_server.api(demo_server.token("caseworker", agency="benefits-office")) as agency:
        grant = agency.post(
            "/v1/grants",
            json={"citizen_id": citizen_id, "purpose": BENEFITS["purpose"], "fields": ["email"], "max_uses": 3},
        )
    assert grant.status_code == 201, grant.text
    grant_id = grant.json()["id"]

    sign_in(web, REGISTRAR)
    _visit(web, "agency-start-registrar", "/agency")
    _visit(web, "agency-lookup", "/agency/citizens")
    _visit(web, "agency-profile", f"/agency/citizens/{citizen_id}")
    _visit(web, "agency-correct", f"/agency/citizens/{citizen_id}/correct")
    web.page.goto("/agency/citizens")
    web.page.get_by_label("Value").fill(profile["national_id"])
    with web.page.expect_response(lambda r: r.request.method == "POST") as found:
        web.page.get_by_role("button", name="Search").click()
    web.page.get_by_role("heading", name="Results").wait_for()
    _checked(web, found.value, "agency-lookup-found")
    web.page.goto(f"/agency/citizens/{citizen_id}/correct")
    web.page.get_by_role("button", name="Save corrections").click()  # nothing changed: refused, explained
    assert "You did not change anything" in web.page.get_by_role("alert").inner_text()
    assert serious_violations(web.page) == []
    web.shot("agency-correct-error")

    sign_in(web, CASEWORKER)
    _visit(web, "agency-start-caseworker", "/agency")
    _visit(web, "agency-grant-purpose", "/agency/grants/new")
    _visit(web, "agency-grant-form", f"/agency/grants/new?purpose={BENEFITS['purpose']}")
    _visit(web, "agency-grant", f"/agency/grants/{grant_id}")
    _visit(web, "agency-grants", "/agency/grants")
    web.page.goto(f"/agency/grants/{grant_id}")
    with web.page.expect_response(lambda r: r.request.method == "POST") as read:
        web.page.get_by_role("button", name="Read the data").click()
    web.page.get_by_role("heading", name="Granted data").wait_for()
    _checked(web, read.value, "agency-grant-data")
    web.page.goto(f"/agency/grants/new?purpose={BENEFITS['purpose']}")
    web.page.get_by_role("button", name="Request the grant").click()  # nothing chosen: refused, explained
    assert "Choose the data you need" in web.page.get_by_role("alert").inner_text()
    assert serious_violations(web.page) == []
    web.shot("agency-grant-form-error")
    assert web.foreign_requests() == []
    # The CSP refused nothing (no inline script or style anywhere); the errors are the two 422s asked for.
    assert (
        web.console_errors
        == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"] * 2
    )
