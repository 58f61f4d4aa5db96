"""Sessions as a real browser holds them (issue 14, "Security"): the cookie's flags and that page
scripts cannot read it, sign-out ending the session on the server (the old cookie replayed is
refused), no open redirect through `next` as a browser resolves URLs, a citizen's session refusing
another citizen's consent by id in the URL and in a form, and the portal usable at phone width
(no sideways scrolling)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from tests.support.browser import DemoServer, Web, sign_in
from vault import demo

if TYPE_CHECKING:  # imported by the fixtures, which skip (or fail under CI) without playwright
    from playwright.sync_api import ViewportSize

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}
# What a browser resolves to another host: scheme-relative, backslash (read as a slash), a tab
# inside the slashes (stripped), an absolute URL.
FOREIGN_NEXT = ["//203.0.113.9/x", "/\\203.0.113.9/x", "/\t/203.0.113.9/x", "https://203.0.113.9/x"]
PHONE: ViewportSize = {"width": 360, "height": 740}


def _name(i: int) -> str:
    p = demo.profile(i)
    return f"{p['given_name']} {p['family_name']}"


def _consent_of(server: DemoServer, i: int) -> tuple[str, str]:
    citizen_id = server.citizen_id(demo.profile(i)["national_id"])
    with server.api(server.token("citizen", subject=citizen_id)) as me:
        given = me.post("/v1/me/consents", json=BENEFITS)
    assert given.status_code == 201, given.text
    return citizen_id, str(given.json()["id"])


def test_the_session_cookie_is_httponly_lax_and_sign_out_ends_it_on_the_server(web: Web) -> None:
    sign_in(web, _name(0))
    session = [c for c in web.context.cookies() if c["name"].endswith("cv_session")]
    assert len(session) == 1, web.context.cookies()
    cookie = session[0]
    assert cookie.get("httpOnly") is True and cookie.get("sameSite") == "Lax" and cookie.get("path") == "/"
    assert "cv_session" not in web.page.evaluate("document.cookie")  # out of reach of page scripts

    web.page.goto("/portal")
    web.page.get_by_role("button", name="Sign out").click()
    web.page.wait_for_url(lambda url: not url.rstrip("/").endswith("/portal"))
    # The same cookie value, put back: the server ended that session, so it is a stranger again.
    web.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": web.base}])
    response = web.page.goto("/portal/data")
    assert response is not None and "/login" in web.page.url, web.page.url
    assert demo.profile(0)["email"] not in web.page.content()


def test_a_citizen_cannot_reach_another_citizens_consent_by_its_id(web: Web, demo_server: DemoServer) -> None:
    other_id, others_consent = _consent_of(demo_server, 1)
    sign_in(web, _name(0))
    page = web.page
    shown = page.goto(f"/portal/consents/{others_consent}/withdraw")
    assert shown is not None and shown.status == 404
    assert "benefits-office" not in page.content()  # nothing of the other citizen's consent is shown
    # The form of one's own withdraw page, pointed at the other citizen's consent.
    _, own_consent = _consent_of(demo_server, 0)
    page.goto(f"/portal/consents/{own_consent}/withdraw")
    page.locator("form[action$='/withdraw']").evaluate(
        "(form, id) => { form.action = `/portal/consents/${id}/withdraw` }", others_consent
    )
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Withdraw consent").click()
    assert posted.value.status == 404
    with demo_server.api(demo_server.token("citizen", subject=other_id)) as other:
        statuses = {c["id"]: c["status"] for c in other.get("/v1/me/consents").json()}
    assert statuses[others_consent] == "active"


def test_the_portal_pages_fit_a_phone_screen(web: Web, demo_server: DemoServer) -> None:
    assert web.context.browser is not None
    phone = web.context.browser.new_context(base_url=demo_server.base, viewport=PHONE)
    try:
        page = phone.new_page()
        sign_in(web, _name(2), page)
        for path in ["/login", "/portal", "/portal/data", "/portal/consents", "/portal/requests", "/portal/export"]:
            page.goto(path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE["width"], (path, wide)
            web.shot(f"phone-{path.strip('/').replace('/', '-')}", page)
    finally:
        phone.close()


def test_sign_in_follows_a_local_next_and_never_another_host(web: Web) -> None:
    page = web.page
    page.goto("/login?next=" + quote("/portal/consents"))
    page.get_by_role("button", name=f"Sign in as {_name(0)}", exact=True).click()
    page.wait_for_url("**/portal/consents")  # a local `next` is followed
    for target in FOREIGN_NEXT:
        page.goto("/login?next=" + quote(target))
        page.get_by_role("button", name=f"Sign in as {_name(0)}", exact=True).click()
        page.wait_for_url(lambda url: urlsplit(url).path not in {"/login", "/login/demo"})
        assert urlsplit(page.url).netloc == urlsplit(web.base).netloc, (target, page.url)
    assert web.foreign_requests() == []
