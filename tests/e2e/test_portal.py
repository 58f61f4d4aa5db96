"""Issue 14, "Show" 1-3, in headless Chromium against a real `citizen-vault serve --demo`: a citizen
withdraws a consent in the portal and the agency's next API read is refused; a citizen downloads
the export and it holds their fields; a caseworker's request that needs consent is approved in the
portal and the caseworker reads the data. Agencies act through the HTTP API with operator tokens."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from tests.support.api_world import verify
from tests.support.browser import DemoServer, Web, serious_violations, sign_in
from vault import demo

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}


def _citizen(server: DemoServer, i: int) -> tuple[str, dict[str, Any], str]:
    """Demo citizen ``i``: vault id, fictitious profile, display name on the sign-in page."""
    p = demo.profile(i)
    return server.citizen_id(p["national_id"]), p, f"{p['given_name']} {p['family_name']}"


def _jwks(server: DemoServer) -> dict[str, dict[str, Any]]:
    """The service's public keys by kid, as anyone fetches them."""
    return {k["kid"]: k for k in httpx.get(f"{server.base}/.well-known/jwks.json").json()["keys"]}


def test_withdrawing_a_consent_in_the_portal_refuses_the_agencys_very_next_read(
    web: Web, demo_server: DemoServer
) -> None:
    citizen_id, profile, name = _citizen(demo_server, 0)
    with demo_server.api(demo_server.token("citizen", subject=citizen_id)) as me:
        given = me.post("/v1/me/consents", json=BENEFITS)
        assert given.status_code == 201, given.text
    with demo_server.api(demo_server.token("caseworker", agency="benefits-office")) as agency:
        grant = agency.post(
            "/v1/grants",
            json={
                "citizen_id": citizen_id,
                "purpose": BENEFITS["purpose"],
                "fields": ["email", "income"],
                "max_uses": 5,
            },
        )
        assert grant.status_code == 201 and grant.json()["status"] == "active", grant.text
        read = f"/v1/grants/{grant.json()['id']}/data"
        assert agency.get(read).status_code == 200  # the grant works before the withdrawal

        sign_in(web, name)
        web.page.goto("/portal/data")
        body = web.page.locator("main")
        assert profile["given_name"] in body.inner_text() and profile["email"] in body.inner_text()
        assert "civil-registry" in body.inner_text()  # each field's source agency
        web.shot("my-data")
        web.page.goto("/portal/consents")
        web.shot("my-consents")
        web.page.get_by_role("link", name="Withdraw this consent").click()
        web.page.get_by_role("heading", name="Withdraw your consent?").wait_for()
        web.shot("withdraw-confirm")
        web.page.get_by_role("button", name="Withdraw consent").click()
        web.page.wait_for_url("**/portal/consents?done=withdrawn")
        assert "withdrawn" in web.page.locator("main").inner_text()

        refused = agency.get(read)
    assert refused.status_code == 403, refused.text
    # The withdrawal ended the grant at once, and the refusal says why.
    assert refused.json()["reason"] == "grant-revoked", refused.json()
    assert "consent-withdrawn" in refused.json()["detail"], refused.json()
    assert web.foreign_requests() == []


def test_the_downloaded_export_parses_and_holds_the_citizens_fields(web: Web, demo_server: DemoServer) -> None:
    citizen_id, profile, name = _citizen(demo_server, 1)
    sign_in(web, name)
    web.page.goto("/portal/export")
    web.shot("export")
    with web.page.expect_download() as signed:
        web.page.get_by_role("link", name="Download as JSON (signed)").click()
    document = json.loads(signed.value.path().read_text(encoding="utf-8"))
    assert document["bundle"]["citizen_id"] == citizen_id
    assert document["bundle"]["profile"]["fields"] == profile
    assert verify(document["jws"], _jwks(demo_server)) == document["bundle"]  # signed by the service

    with web.page.expect_download() as table:
        web.page.get_by_role("link", name="Download as CSV (spreadsheet)").click()
    rows = list(csv.reader(io.StringIO(table.value.path().read_text(encoding="utf-8"))))
    cells = {cell for row in rows for cell in row}
    assert {profile["given_name"], profile["email"], profile["national_id"]} <= cells


def test_a_request_needing_consent_approved_in_the_portal_lets_the_caseworker_read(
    web: Web, demo_server: DemoServer
) -> None:
    citizen_id, profile, name = _citizen(demo_server, 2)
    with demo_server.api(demo_server.token("caseworker", agency="benefits-office")) as agency:
        asked = agency.post(
            "/v1/grants", json={"citizen_id": citizen_id, "purpose": BENEFITS["purpose"], "fields": ["email", "income"]}
        )
        assert asked.status_code == 403 and asked.json()["reason"] == "consent-required", asked.text
        grant_id = asked.json()["grant_id"]
        assert agency.get(f"/v1/grants/{grant_id}/data").status_code == 403  # nothing to read yet

        sign_in(web, name)
        web.page.goto("/portal/requests")
        card = web.page.locator("section.card", has=web.page.locator(f"#request-{grant_id}"))
        assert "email, income" in card.inner_text()
        web.shot("requests")
        card.get_by_role("button", name="Approve this request").click()
        web.page.wait_for_url("**/portal/requests?done=approved")

        assert agency.get(f"/v1/grants/{grant_id}").json()["status"] == "active"
        data = agency.get(f"/v1/grants/{grant_id}/data")
    assert data.status_code == 200, data.text
    assert data.json()["records"] == [
        {"citizen_id": citizen_id, "fields": {"email": profile["email"], "income": profile["income"]}}
    ]
    # The read shows at once in the citizen's "who read my data", with the agency, purpose, fields and
    # the lawful basis in words.
    web.page.goto("/portal/access-log")
    reads = web.page.locator("main tr", has_text="benefits-office").filter(has_text="income")
    assert reads.count() >= 1, web.page.locator("main").inner_text()
    row = reads.last.inner_text()
    assert "benefit-eligibility" in row and "Your consent" in row and "allowed" in row, row
    web.shot("access-log")


def test_a_consent_given_in_the_portal_is_the_agencys_basis_and_its_signed_receipt_downloads(
    web: Web, demo_server: DemoServer
) -> None:
    citizen_id, _, name = _citizen(demo_server, 1)
    sign_in(web, name)
    page = web.page
    page.goto("/portal/consents/new")
    page.get_by_role("button", name="Give consent").click()  # nothing chosen: refused, explained
    summary = page.get_by_role("alert")
    assert "Choose what you consent to" in summary.inner_text()
    assert serious_violations(page) == []  # the error state is accessible too
    web.shot("give-consent-error")
    page.get_by_label("benefits-office: Decide eligibility for housing and income benefits").check()
    page.get_by_role("button", name="Give consent").click()
    page.wait_for_url("**/portal/consents?done=given")

    with demo_server.api(demo_server.token("caseworker", agency="benefits-office")) as agency:
        grant = agency.post(
            "/v1/grants", json={"citizen_id": citizen_id, "purpose": BENEFITS["purpose"], "fields": ["email"]}
        )
    assert grant.status_code == 201 and grant.json()["status"] == "active", grant.text

    page.get_by_role("link", name="See the signed receipts").click()
    assert page.get_by_role("table").locator("tbody tr").count() == 1
    web.shot("receipts")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed receipts").click()
    [receipt] = json.loads(download.value.path().read_text(encoding="utf-8"))
    payload = verify(receipt["receipt"], _jwks(demo_server))
    assert payload["piiPrincipalId"] == citizen_id and payload["services"][0]["service"] == BENEFITS["purpose"]
