"""Issue 14, "Show" 5 and "Accessibility", in headless Chromium against a real `citizen-vault serve --demo`:
security headers and axe-core on every main page, a stored XSS payload rendered as text, a form
posted with another session's CSRF token (or none) refused without effect, and a consent withdrawn
with the keyboard alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.browser import DemoServer, Web, serious_violations, sign_in, visit_page
from vault import demo

if TYPE_CHECKING:  # imported by the fixtures, which skip (or fail under CI) without playwright
    from playwright.sync_api import Dialog, Page

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}
PAYLOAD = "<script>alert('xss-1')</script><img src=x onerror=\"alert('xss-2')\">"
# The public pages and the citizen's pages; each is checked for its headers, for requests that
# leave the origin, for anything the CSP refused, and with axe-core.
PUBLIC_PAGES = ["/", "/login"]
PORTAL_PAGES = [
    "/portal",
    "/portal/data",
    "/portal/consents",
    "/portal/consents/new",
    "/portal/requests",
    "/portal/access-log",
    "/portal/export",
]


def _name(i: int) -> str:
    p = demo.profile(i)
    return f"{p['given_name']} {p['family_name']}"


def _give_consent(server: DemoServer, citizen_id: str, categories: list[str] | None = None) -> str:
    with server.api(server.token("citizen", subject=citizen_id)) as me:
        given = me.post("/v1/me/consents", json={**BENEFITS, **({"categories": categories} if categories else {})})
    assert given.status_code == 201, given.text
    return str(given.json()["id"])


def _consent_status(server: DemoServer, citizen_id: str, consent_id: str) -> str:
    with server.api(server.token("citizen", subject=citizen_id)) as me:
        mine = {c["id"]: c["status"] for c in me.get("/v1/me/consents").json()}
    return str(mine[consent_id])


def _check_page(web: Web, path: str) -> None:
    visit_page(web, path, path.strip("/") or "landing")


def test_every_main_page_has_the_headers_no_foreign_request_no_csp_refusal_and_no_serious_axe_violation(
    web: Web, demo_server: DemoServer
) -> None:
    citizen_id = demo_server.citizen_id(demo.profile(0)["national_id"])
    # A consent for identity data only, and a request for contact data on top of it: the consents
    # page shows a card, the requests page a form.
    _give_consent(demo_server, citizen_id, ["identity"])
    with demo_server.api(demo_server.token("caseworker", agency="benefits-office")) as agency:
        asked = agency.post(
            "/v1/grants", json={"citizen_id": citizen_id, "purpose": BENEFITS["purpose"], "fields": ["email"]}
        )
    assert asked.status_code == 403 and asked.json()["reason"] == "consent-required", asked.text
    for path in PUBLIC_PAGES:
        _check_page(web, path)
    sign_in(web, _name(0))
    for path in PORTAL_PAGES:
        _check_page(web, path)
    web.page.goto("/portal/consents")
    web.page.get_by_role("link", name="Withdraw this consent").click()
    assert serious_violations(web.page) == []
    web.shot("portal-withdraw-confirm")
    assert web.foreign_requests() == []
    assert web.console_errors == []  # the CSP refused nothing: no inline script or style anywhere


def test_a_stored_script_payload_renders_as_text_and_never_runs(web: Web, demo_server: DemoServer) -> None:
    citizen_id = demo_server.citizen_id(demo.profile(1)["national_id"])
    with demo_server.api(demo_server.token("registrar", agency="civil-registry")) as registrar:
        stored = registrar.patch(f"/v1/citizens/{citizen_id}", json={"fields": {"address": PAYLOAD}})
    assert stored.status_code == 200, stored.text
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    web.page.on("dialog", on_dialog)
    sign_in(web, _name(1))
    web.page.goto("/portal/data")
    assert PAYLOAD in web.page.locator("main").inner_text()  # shown, as the characters it is
    injected = web.page.evaluate(
        "({scripts: [...document.scripts].filter(s => s.textContent.includes('xss')).length,"
        " handlers: document.querySelectorAll('[onerror]').length})"
    )
    assert injected == {"scripts": 0, "handlers": 0}
    web.page.goto("/portal/export")  # a second page that reads the profile, then back
    web.page.go_back()
    assert dialogs == []
    web.shot("xss-as-text")


def _csrf_of(page: Page) -> str:
    return str(page.locator("form[action$='/withdraw'] input[name=csrf_token]").input_value())


def test_a_form_posted_with_another_sessions_token_or_none_is_refused_and_changes_nothing(
    web: Web, demo_server: DemoServer
) -> None:
    citizen_id = demo_server.citizen_id(demo.profile(2)["national_id"])
    consent_id = _give_consent(demo_server, citizen_id)
    confirm = f"/portal/consents/{consent_id}/withdraw"
    # A second context: another browser, another session of the same citizen, another token.
    other = web.context.browser.new_context(base_url=demo_server.base) if web.context.browser else None
    assert other is not None
    try:
        other_page = other.new_page()
        sign_in(web, _name(2), other_page)
        other_page.goto(confirm)
        foreign_token = _csrf_of(other_page)
    finally:
        other.close()

    sign_in(web, _name(2))
    web.page.goto(confirm)
    own_token = _csrf_of(web.page)
    assert foreign_token != own_token
    for token in (foreign_token, None):
        web.page.goto(confirm)
        field = web.page.locator("form[action$='/withdraw'] input[name=csrf_token]")
        if token is None:
            field.evaluate("input => input.remove()")
        else:
            field.evaluate("(input, value) => { input.value = value }", token)
        with web.page.expect_response(lambda r: r.request.method == "POST") as posted:
            web.page.get_by_role("button", name="Withdraw consent").click()
        assert posted.value.status == 403, (token, posted.value.status)
        assert _consent_status(demo_server, citizen_id, consent_id) == "active"


def test_a_consent_can_be_withdrawn_with_the_keyboard_alone(web: Web, demo_server: DemoServer) -> None:
    citizen_id = demo_server.citizen_id(demo.profile(1)["national_id"])
    consent_id = _give_consent(demo_server, citizen_id)
    sign_in(web, _name(1))
    page = web.page
    page.goto("/portal/consents")

    def tab_to(text: str) -> None:
        for _ in range(60):
            page.keyboard.press("Tab")
            if text in page.evaluate("document.activeElement.innerText || ''"):
                return
        raise AssertionError(f"Tab never reached {text!r}")

    # The link of this consent (another may be withdrawn already): its href names the consent.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href') || ''").endswith(f"{consent_id}/withdraw"):
            break
    else:
        raise AssertionError("Tab never reached the consent's withdraw link")
    focus = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
    )
    assert focus, "the focused link shows no focus indicator"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Withdraw your consent?").wait_for()
    tab_to("Withdraw consent")
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/consents?done=withdrawn")
    assert _consent_status(demo_server, citizen_id, consent_id) == "withdrawn"
