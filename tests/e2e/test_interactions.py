"""Issue 15 "Show", in headless Chromium against a real `citizen-vault serve --demo`: a citizen files a
service request whose text holds a phone number and an email; the receiving agency's caseworker
acknowledges, works and resolves it in the console; the citizen rates it. Then the citizen is
erased: the text is unreadable and the anonymous statistics row remains. All data is fictitious."""

from __future__ import annotations

import re
import sqlite3

from tests.support.browser import DemoServer, Web, serious_violations, sign_in
from vault import demo

PHONE = "+1 212 555 0188"
EMAIL = "e2e.reporter@example.org"
TEXT = f"The street light outside is dark. Call me on {PHONE} or write to {EMAIL}."
CASEWORKER = "Caseworker, Public Works"


def test_a_citizen_files_the_caseworker_resolves_the_citizen_rates_then_erasure_shreds_the_text(
    web: Web, demo_server: DemoServer
) -> None:
    p = demo.profile(1)
    citizen_id = demo_server.citizen_id(p["national_id"])
    sign_in(web, f"{p['given_name']} {p['family_name']}")
    page = web.page
    page.goto("/portal/service-requests")
    page.get_by_role("link", name="Make a new request").click()
    page.get_by_label("Which service is it about?").select_option("streetlight")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Describe it").fill(TEXT)
    page.get_by_label("Address").fill("Lamp post by 3 Fable Street")
    page.get_by_role("button", name="Send the request").click()
    page.wait_for_url(re.compile(r"/portal/service-requests/[0-9a-f-]{36}\?done=filed"))
    iid = page.url.split("/")[-1].split("?")[0]
    assert "Your request was received." in page.locator("main").inner_text()
    assert serious_violations(page) == []
    web.shot("filed")

    sign_in(web, CASEWORKER)
    page.goto("/agency/interactions?status=open")
    page.locator(f'a[href="/agency/interactions/{iid}"]').click()
    assert PHONE in page.locator("main").inner_text()
    for button, note in (("Acknowledge", "Thanks, we are on it."), ("Start work", None), ("Resolve", "Bulb replaced.")):
        if note:
            page.get_by_label("Note for the citizen (optional)").fill(note)
        page.get_by_role("button", name=button).click()
        page.wait_for_url(f"**/agency/interactions/{iid}?done=status")
    assert "Resolved" in page.locator("main").inner_text()
    assert serious_violations(page) == []
    web.shot("worked")

    sign_in(web, f"{p['given_name']} {p['family_name']}")
    page.goto(f"/portal/service-requests/{iid}")
    assert "Bulb replaced." in page.locator("main").inner_text()
    page.get_by_label("4: good").check()
    page.get_by_label("Comment (optional)").fill("Quick fix")
    page.get_by_role("button", name="Send the rating").click()
    page.wait_for_url(f"**/portal/service-requests/{iid}?done=rated")
    assert "You rated it 4 of 5" in page.locator("main").inner_text()

    with demo_server.api(demo_server.token("registrar", agency="civil-registry")) as registry:
        assert registry.delete(f"/v1/citizens/{citizen_id}").status_code == 200
    with demo_server.api(demo_server.token("caseworker", agency="public-works")) as works:
        after = works.get(f"/v1/interactions/{iid}").json()
    assert after["readable"] is False and after["text"] is None and after["contact"] is None
    with sqlite3.connect(f"file:{demo_server.data / 'vault.db'}?mode=ro", uri=True) as db:
        fact = db.execute("SELECT status, rating FROM interaction_facts WHERE interaction_id = ?", (iid,)).fetchone()
    assert fact == ("resolved", 4)
