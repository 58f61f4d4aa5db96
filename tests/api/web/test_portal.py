"""The citizen portal: each flow calls the API's services with the same audit, and what a page
changes is what the API sees next. All people and agencies are fictitious."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

from tests.support.api_world import problem
from tests.support.web_world import WebWorld
from vault import demo

BENEFITS = {"choice": "benefits-office|benefit-eligibility", "expires": ""}


def _citizen(web: WebWorld, i: int = 0) -> str:
    assert web.demo_citizens is not None
    return web.demo_citizens[i]


def _events(web: WebWorld, citizen: str, action: str) -> list[dict[str, object]]:
    return [e for e in web.events(citizen_id=citizen) if e["action"] == action]


def test_my_data_shows_each_field_with_its_source_and_is_audited_like_the_api_read(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("citizen-0")
    page = web.client.get("/portal/data")
    assert page.status_code == 200
    person = demo.profile(0)
    for name in ("given_name", "family_name", "email", "address"):
        assert str(person[name]) in page.text
    assert "From civil-registry" in page.text and "Ask for a correction of address" in page.text
    (read,) = _events(web, citizen, "me.read")
    assert read["actor"] == citizen and read["outcome"] == "allowed"


def test_a_consent_form_with_an_error_is_shown_again_with_a_summary_and_what_was_typed(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    refused = web.post(
        "/portal/consents", {"choice": BENEFITS["choice"], "expires": "30/06/2027"}, page="/portal/consents/new"
    )
    assert refused.status_code == 422
    assert "There is a problem" in refused.text and 'href="#expires"' in refused.text
    assert (
        'value="30/06/2027"' in refused.text and 'value="benefits-office|benefit-eligibility" checked' in refused.text
    )
    past = web.post(
        "/portal/consents", {"choice": BENEFITS["choice"], "expires": "2001-01-01"}, page="/portal/consents/new"
    )
    assert past.status_code == 422 and "must be in the future" in past.text
    nothing = web.post("/portal/consents", {"expires": ""}, page="/portal/consents/new")
    assert nothing.status_code == 422 and 'href="#choice"' in nothing.text


def test_giving_a_consent_shows_its_purpose_and_signed_receipts(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("citizen-0")
    until = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    given = web.post("/portal/consents", {**BENEFITS, "expires": until}, page="/portal/consents/new")
    assert given.status_code == 303 and given.headers["location"] == "/portal/consents?done=given"
    listed = web.client.get(given.headers["location"])
    assert "Your consent was recorded." in listed.text
    assert "Decide eligibility for housing and income benefits" in listed.text and "version 1" in listed.text
    (consent,) = web.client.get("/v1/me/consents", headers=web.me(citizen)).json()
    assert consent["expires_at"].startswith(until)
    receipts = web.client.get(f"/portal/consents/{consent['id']}/receipts")
    assert receipts.status_code == 200 and "Download the signed receipts" in receipts.text
    download = web.client.get(f"/portal/consents/{consent['id']}/receipts.json")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    assert download.json() == web.receipts(citizen, consent["id"])


def test_withdrawing_in_the_portal_refuses_the_agencys_next_read(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("citizen-0")
    assert web.post("/portal/consents", BENEFITS, page="/portal/consents/new").status_code == 303
    grant = web.granted(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["income"], max_uses=5)
    assert web.read(web.benefits, grant["id"]).status_code == 200
    (consent,) = web.client.get("/v1/me/consents", headers=web.me(citizen)).json()

    confirm = web.client.get(f"/portal/consents/{consent['id']}/withdraw")
    assert confirm.status_code == 200 and "Withdraw your consent?" in confirm.text
    done = web.post(f"/portal/consents/{consent['id']}/withdraw", {}, page=f"/portal/consents/{consent['id']}/withdraw")
    assert done.status_code == 303 and done.headers["location"] == "/portal/consents?done=withdrawn"

    problem(web.read(web.benefits, grant["id"]), 403, "grant-revoked")
    (withdrawn,) = _events(web, citizen, "consents.withdraw")
    assert withdrawn["actor"] == citizen


def test_approving_a_request_in_the_portal_lets_the_agency_read(web: WebWorld) -> None:
    citizen = _citizen(web)
    asked = web.ask(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["email", "income"])
    grant_id = problem(asked, 403, "consent-required")["grant_id"]
    web.sign_in("citizen-0")
    page = web.client.get("/portal/requests")
    assert page.status_code == 200 and "benefits-office" in page.text and "Approving adds" in page.text
    assert "contact, financial" in page.text  # the preview: the categories the request adds

    bad = web.post(
        f"/portal/requests/{grant_id}/approve",
        {f"until-{grant_id}": "date", f"expires-{grant_id}": ""},
        page="/portal/requests",
    )
    assert bad.status_code == 422 and f'href="#expires-{grant_id}"' in bad.text
    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    form = {f"until-{grant_id}": "date", f"expires-{grant_id}": until, "purpose_version": "1"}
    approved = web.post(f"/portal/requests/{grant_id}/approve", form, page="/portal/requests")
    assert approved.status_code == 303 and approved.headers["location"] == "/portal/requests?done=approved"

    assert web.read(web.benefits, grant_id).status_code == 200
    (consent,) = web.client.get("/v1/me/consents", headers=web.me(citizen)).json()
    assert consent["expires_at"].startswith(until)
    assert "No request is waiting" in web.client.get("/portal/requests").text


def test_declining_a_request_ends_it_and_leaves_the_consent_as_it_was(web: WebWorld) -> None:
    citizen = _citizen(web)
    held = web.client.post(
        "/v1/me/consents",
        json={"agency": "benefits-office", "purpose": "benefit-eligibility", "categories": ["identity"]},
        headers=web.me(citizen),
    )
    assert held.status_code == 201, held.text
    asked = web.ask(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["income"])
    grant_id = problem(asked, 403, "consent-required")["grant_id"]
    web.sign_in("citizen-0")
    declined = web.post(f"/portal/requests/{grant_id}/decline", {}, page="/portal/requests")
    assert declined.status_code == 303 and declined.headers["location"] == "/portal/requests?done=declined"
    assert "You declined the request" in web.client.get(declined.headers["location"]).text

    problem(web.read(web.benefits, grant_id), 403, "grant-revoked")
    shown = web.client.get(f"/v1/grants/{grant_id}", headers=web.benefits).json()
    assert (shown["status"], shown["status_reason"]) == ("revoked", "declined-by-citizen")
    (consent,) = web.client.get("/v1/me/consents", headers=web.me(citizen)).json()
    assert (consent["categories"], consent["version"]) == (["identity"], 1)
    # The API answers the same: nothing is pending any more, and a second decline finds nothing.
    problem(web.client.post(f"/v1/me/grant-requests/{grant_id}/decline", headers=web.me(citizen)), 404)
    [event] = [e for e in web.events(citizen_id=citizen, action="grants.decline")]
    assert (event["grant_id"], event["outcome"]) == (grant_id, "allowed")


def test_who_read_my_data_pages_through_the_log_and_is_recorded(web: WebWorld) -> None:
    citizen = _citizen(web)
    for _ in range(60):  # more reads than one page holds
        assert web.client.get(f"/v1/citizens/{citizen}", headers=web.registrar).status_code == 200
    web.sign_in("citizen-0")
    first = web.client.get("/portal/access-log")
    assert first.status_code == 200 and "registrar@civil-registry" in first.text
    assert "Some entries are deferred" not in first.text
    following = re.search(r'href="(/portal/access-log\?after=\d+)" rel="next"', first.text)
    assert following, "no next page link"
    second = web.client.get(following.group(1))
    assert second.status_code == 200 and "First page" in second.text
    assert len(_events(web, citizen, "me.access-log")) == 2


def test_download_everything_as_json_and_csv_with_the_exports_audit(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("citizen-0")
    assert "Download as JSON" in web.client.get("/portal/export").text
    as_json = web.client.get("/portal/export.json")
    assert as_json.status_code == 200 and "attachment" in as_json.headers["content-disposition"]
    bundle = json.loads(as_json.text)
    assert bundle["bundle"]["citizen_id"] == citizen and bundle["jws"]
    assert bundle["bundle"]["profile"]["fields"]["given_name"] == demo.profile(0)["given_name"]
    as_csv = web.client.get("/portal/export.csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert any(r["kind"] == "field" for r in rows)
    assert len(_events(web, citizen, "me.export")) == 2
