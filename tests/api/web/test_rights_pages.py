"""Rights requests in the pages: the citizen asks for a correction from My data and follows it;
the source agency's registrar sees the proposed value only when deciding and applies it; erasure
is explained before it is asked; the compliance console counts overdue requests. Invented people."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.support.grants_helpers import Clock, citizen_actor
from tests.support.web_world import WebWorld, refusal_page
from vault.requests.handling import RequestDesk

NEW_ADDRESS = "5 Invented Crescent, Nowhereville"
XSS = '<script>alert("why")</script>'


def _citizen(web: WebWorld, i: int = 0) -> str:
    assert web.demo_citizens is not None
    return web.demo_citizens[i]


def _request_id(location: str) -> str:
    found = re.fullmatch(r"/portal/rights/([0-9a-f-]{36})\?done=submitted", location)
    assert found, location
    return found.group(1)


def test_a_correction_asked_in_the_portal_is_applied_by_the_source_agency(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("citizen-0")
    data = web.client.get("/portal/data")
    assert 'href="/portal/rights/correct?field=address"' in data.text
    form = web.client.get("/portal/rights/correct?field=address")
    assert form.status_code == 200 and '<option value="address" selected>' in form.text
    sent = web.post("/portal/rights/correct", {"field": "address", "value": NEW_ADDRESS, "why": XSS})
    assert sent.status_code == 303, sent.text
    rid = _request_id(sent.headers["location"])
    mine = web.client.get(f"/portal/rights/{rid}?done=submitted")
    assert "Correction" in mine.text and "verified" in mine.text
    assert XSS not in mine.text and "&lt;script&gt;alert(" in mine.text, "a message renders as text"
    assert NEW_ADDRESS not in mine.text, "the proposed value is shown to the deciding officer only"

    officer = web.browser()
    web.sign_in("registrar@civil-registry", officer)
    queue = officer.get("/agency/rights")
    assert f"/agency/rights/{rid}" in queue.text
    shown = officer.get(f"/agency/rights/{rid}")
    assert NEW_ADDRESS not in shown.text and "See the proposed value" in shown.text
    deciding = officer.get(f"/agency/rights/{rid}/decide")
    assert NEW_ADDRESS in deciding.text
    accepted = web.post(f"/agency/rights/{rid}/accept", {}, officer, page=f"/agency/rights/{rid}/decide")
    assert accepted.status_code == 303, accepted.text
    assert web.vault.profiles.read(uuid.UUID(citizen), ["address"]).values["address"] == NEW_ADDRESS

    done = web.client.get(f"/portal/rights/{rid}")
    assert "complete" in done.text and "the correction was applied" in done.text
    other = web.browser()
    web.sign_in("caseworker@tax-office", other)
    refusal_page(other.get(f"/agency/rights/{rid}"), 404)


def test_a_duplicate_correction_is_shown_again_with_the_reason(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    first = web.post("/portal/rights/correct", {"field": "phone", "value": "+999 555 0042", "why": ""})
    assert first.status_code == 303
    again = web.post(
        "/portal/rights/correct", {"field": "phone", "value": "+999 555 0043", "why": ""}, page="/portal/rights/correct"
    )
    assert again.status_code == 422 and "There is a problem" in again.text
    assert "already have an open request" in again.text and 'value="+999 555 0043"' in again.text
    unknown = web.post("/portal/rights/correct", {"field": "shoe_size", "value": "9"}, page="/portal/rights/correct")
    assert unknown.status_code == 422 and 'href="#field"' in unknown.text


def test_erasure_explains_what_is_kept_before_it_is_asked(web: WebWorld) -> None:
    web.sign_in("citizen-1")
    page = web.client.get("/portal/rights/erasure")
    assert "What will be kept, and why" in page.text and "Civil Registration Act" in page.text
    unconfirmed = web.post("/portal/rights/erasure", {})
    assert unconfirmed.status_code == 422 and 'href="#confirm"' in unconfirmed.text
    sent = web.post("/portal/rights/erasure", {"confirm": "yes"})
    assert sent.status_code == 303
    rid = _request_id(sent.headers["location"])
    listed = web.client.get("/portal/rights")
    assert f"/portal/rights/{rid}" in listed.text and "Erasure" in listed.text


def test_the_compliance_console_counts_overdue_requests(web: WebWorld) -> None:
    citizen = _citizen(web, 2)
    v = web.vault
    past = RequestDesk(
        v.data_engine,
        v.dekstore,
        v.catalogue,
        v.profiles,
        v.purposes,
        v.audit,
        Clock(datetime.now(UTC) - timedelta(days=40)),
    )
    made = past.submit(citizen_actor(citizen), citizen, "restriction", purposes=["emergency-care"])
    web.sign_in("compliance@vault")
    page = web.client.get("/console/requests")
    assert page.status_code == 200
    assert '<strong id="overdue-count">1</strong>' in page.text and made.id in page.text
