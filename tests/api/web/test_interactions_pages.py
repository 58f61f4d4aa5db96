"""Service requests in the portal and the officers' console (issue 15): a citizen files one with a
form, the receiving agency's caseworker works it, the citizen rates it; refusals in plain words, the
form kept on error. All people, numbers and places are fictitious."""

from __future__ import annotations

import html
import re

from tests.support.web_world import WebWorld

WORKS = "caseworker@public-works"
PHONE = "+1 212 555 0123"
TEXT = f"The street light at the corner is out. Call {PHONE} if needed."


def _file(web: WebWorld, **form: str) -> str:
    page = "/portal/service-requests/new?service=streetlight"
    body = {"service_code": "streetlight", "kind": "request", "text": TEXT, "address": "Corner of Fable Street", **form}
    sent = web.post("/portal/service-requests", body, page=page)
    assert sent.status_code == 303, sent.text
    found = re.fullmatch(r"/portal/service-requests/([0-9a-f-]{36})\?done=filed", sent.headers["location"])
    assert found, sent.headers["location"]
    return found.group(1)


def test_a_citizen_files_a_request_the_caseworker_works_it_and_the_citizen_rates_it(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    listing = web.client.get("/portal/service-requests")
    assert listing.status_code == 200 and "You have not made any request yet." in listing.text
    iid = _file(web)
    detail = web.client.get(f"/portal/service-requests/{iid}?done=filed")
    assert "Your request was received." in detail.text and PHONE in detail.text
    assert "How did we do?" not in detail.text
    web.sign_in(WORKS)
    queue = web.client.get("/agency/interactions?status=open")
    assert queue.status_code == 200 and f'href="/agency/interactions/{iid}"' in queue.text
    item = web.client.get(f"/agency/interactions/{iid}")
    assert item.status_code == 200 and PHONE in item.text
    page = f"/agency/interactions/{iid}"
    for status in ("acknowledged", "in_progress", "resolved"):
        moved = web.post(f"{page}/status", {"status": status, "note": f"Done: {status}"}, page=page)
        assert moved.status_code == 303 and moved.headers["location"] == f"{page}?done=status", moved.text
    assigned = web.post(f"{page}/assign", {"unit": "street-lighting"}, page=page)
    assert assigned.status_code == 303
    again = web.post(f"{page}/status", {"status": "acknowledged"}, page=page)
    assert again.status_code == 409 and "moved on since you opened it" in again.text
    web.sign_in("citizen-0")
    shown = web.client.get(f"/portal/service-requests/{iid}")
    assert "Done: in_progress" in shown.text and "How did we do?" in shown.text
    rated = web.post(
        f"/portal/service-requests/{iid}/rating",
        {"rating": "5", "comment": "Bright again"},
        page=f"/portal/service-requests/{iid}",
    )
    assert rated.status_code == 303
    final = web.client.get(f"/portal/service-requests/{iid}?done=rated")
    assert "You rated it 5 of 5" in final.text and "Bright again" in final.text


def test_a_refused_form_shows_the_error_and_keeps_what_was_typed(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    sent = web.post(
        "/portal/service-requests",
        {"service_code": "streetlight", "text": "  ", "address": "Kept Address 9"},
        page="/portal/service-requests/new?service=streetlight",
    )
    assert sent.status_code == 422
    assert "There is a problem" in sent.text and 'href="#text"' in sent.text and "Kept Address 9" in sent.text
    missing = web.post(
        "/portal/service-requests",
        {"service_code": "pothole", "text": "A hole", "address": "Somewhere 1"},
        page="/portal/service-requests/new?service=pothole",
    )
    assert missing.status_code == 422 and 'href="#attr_size"' in missing.text
    assert web.client.get("/portal/service-requests").text.count("/portal/service-requests/") <= 1


def test_another_agency_is_refused_in_plain_words(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    iid = _file(web)
    web.sign_in("caseworker@tax-office")
    refused = web.client.get(f"/agency/interactions/{iid}")
    assert refused.status_code == 403 and "belongs to another agency" in html.unescape(refused.text)
    assert PHONE not in refused.text
    assert f"/agency/interactions/{iid}" not in web.client.get("/agency/interactions").text


def test_forms_without_a_csrf_token_are_refused(web: WebWorld) -> None:
    web.sign_in("citizen-0")
    iid = _file(web)
    web.sign_in(WORKS)
    sent = web.client.post(
        f"/agency/interactions/{iid}/status",
        data={"status": "acknowledged"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 403
