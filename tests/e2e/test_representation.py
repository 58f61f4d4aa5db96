"""Issue 17 in headless Chromium against a real `citizen-vault serve --demo`: the demo parent chooses
to act for their child, sees the banner, views and downloads the child's data and gives a consent
for them; the child's own access log says so in plain words; a view-only mandate cannot withdraw a
consent (API, X-Acting-For). The representation pages pass the security headers and axe. The
majority cut-off needs a controllable clock: tests/vault and tests/api/web cover it."""

from __future__ import annotations

import json

from tests.support.browser import DemoServer, Web, sign_in, visit_page
from vault import demo
from vault.representation import demo as representation_demo

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}
BANNER = "You are acting for Pip Quillfeather (as their parent)."


def _name(i: int) -> str:
    p = demo.profile(i)
    return f"{p['given_name']} {p['family_name']}"


def test_a_parent_acts_for_their_child_and_the_child_sees_it(web: Web, demo_server: DemoServer) -> None:
    child_id = demo_server.citizen_id(representation_demo.child_profile()["national_id"])
    sign_in(web, _name(0))
    visit_page(web, "/portal/acting", "people-i-act-for")
    web.page.get_by_role("button", name="Act for Pip Quillfeather").click()
    web.page.wait_for_url("**/portal")
    assert BANNER in web.page.locator("body").inner_text()

    web.page.goto("/portal/data")
    main = web.page.locator("main").inner_text()
    assert "Pip" in main and "pip.demo-child@example.org" in main
    assert BANNER in web.page.get_by_role("status").first.inner_text()
    web.shot("acting-for-child-data")

    web.page.goto("/portal/export")
    with web.page.expect_download() as signed:
        web.page.get_by_role("link", name="Download as JSON (signed)").click()
    assert json.loads(signed.value.path().read_text(encoding="utf-8"))["bundle"]["citizen_id"] == child_id

    web.page.goto("/portal/consents/new")
    web.page.get_by_label("Benefits", exact=False).first.check()
    web.page.get_by_role("button", name="Give consent").click()
    web.page.wait_for_url("**/portal/consents?done=given")
    with demo_server.api(demo_server.token("citizen", subject=child_id)) as child:
        consents = child.get("/v1/me/consents").json()
        assert [(c["agency"], c["purpose"]) for c in consents] == [(BENEFITS["agency"], BENEFITS["purpose"])]

    web.page.goto("/portal/acting")
    web.page.get_by_role("button", name="Act as myself").click()
    web.page.goto("/portal/data")
    assert BANNER not in web.page.locator("body").inner_text()

    sign_in(web, "Pip Quillfeather (a child)")
    web.page.goto("/portal/access-log")
    log = web.page.locator("main").inner_text()
    assert f"Your parent {_name(0)} viewed your profile" in log
    assert f"Your parent {_name(0)} downloaded all your data" in log
    assert f"Your parent {_name(0)} gave a consent for you" in log
    web.shot("child-access-log")
    assert web.foreign_requests() == []


def test_a_view_only_mandate_cannot_withdraw_a_consent(web: Web, demo_server: DemoServer) -> None:
    giver = demo_server.citizen_id(demo.profile(1)["national_id"])
    holder = demo_server.citizen_id(demo.profile(2)["national_id"])
    with demo_server.api(demo_server.token("citizen", subject=giver)) as me:
        consent = me.post("/v1/me/consents", json=BENEFITS)
        assert consent.status_code == 201, consent.text
    acting = {"X-Acting-For": giver}
    with demo_server.api(demo_server.token("citizen", subject=holder)) as them:
        assert them.get("/v1/me", headers=acting).json()["id"] == giver
        refused = them.delete(f"/v1/me/consents/{consent.json()['id']}", headers=acting)
    assert refused.status_code == 403 and refused.json()["reason"] == "outside-scope", refused.text
    sign_in(web, _name(1))
    visit_page(web, "/portal/representatives", "who-can-act-for-me")
    assert _name(2) in web.page.locator("main").inner_text()
    sign_in(web, "Registrar, Civil Registry")
    visit_page(web, "/agency/representations/new", "record-a-parent-or-guardian")
