"""The compliance console: the API's reviews with the same audit and agency scope, as pages.
All people, agencies and events are invented."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from httpx import Response

from api.security.sessions import DEMO_ISSUER
from tests.support.audit_helpers import drop_guards
from tests.support.web_world import FORM, WebWorld, refusal_page
from vault.audit.log import Actor, Event
from vault.audit.tables import audit_events

TAX_CASEWORKER = Actor("caseworker@tax-office", "caseworker", "tax-office")
BENEFITS_CASEWORKER = Actor("caseworker@benefits-office", "caseworker", "benefits-office")
_SEQ = re.compile(r'href="/console/events/(\d+)"')


def _seqs(html: str) -> list[int]:
    """The events a log page lists, in its order."""
    main = html[html.index("<tbody>") :] if "<tbody>" in html else ""
    return [int(s) for s in _SEQ.findall(main)]


def _reads(web: WebWorld, actor: Actor, n: int, **event: str) -> list[int]:
    """``n`` invented reads by ``actor`` of the first demo citizen."""
    assert web.demo_citizens is not None
    citizen = web.demo_citizens[0]
    fields = {"citizen_id": citizen, "fields": ("family_name",)} | event
    return web.vault.audit.record(actor, *(Event("citizens.read", **fields) for _ in range(n)))  # type: ignore[arg-type]


def _officer_of(web: WebWorld, agency: str) -> TestClient:
    """A browser signed in as a compliance officer of ``agency`` (the demo lists only the operator's)."""
    subject = f"compliance@{agency}"
    web.vault.registry.assign(subject, agency, "compliance-officer")
    session_id, _ = web.client.app.state.web_sessions.create(  # type: ignore[attr-defined]
        subject, "compliance-officer", agency, DEMO_ISSUER
    )
    browser = web.browser()
    browser.cookies.set("cv_session", session_id)
    return browser


def _last(web: WebWorld, action: str) -> dict[str, object]:
    found = web.events(action=action)
    assert found, f"no {action} event"
    return found[-1]


def test_filters_narrow_the_log_and_the_page_is_audited_as_the_api_review(web: WebWorld) -> None:
    tax = _reads(web, TAX_CASEWORKER, 2, purpose="tax-assessment")
    benefits = _reads(web, BENEFITS_CASEWORKER, 2, purpose="benefit-eligibility")
    denied = web.vault.audit.record(TAX_CASEWORKER, Event("citizens.read", outcome="denied", reason="no-grant"))
    web.sign_in("compliance@vault")

    everything = _seqs(web.client.get("/console/events").text)
    assert set(tax + benefits + denied) <= set(everything)
    assert _seqs(web.client.get("/console/events?agency=tax-office&action=citizens.read").text) == sorted(
        tax + denied, reverse=True
    )
    assert _seqs(web.client.get("/console/events?purpose=benefit-eligibility&action=citizens.read").text) == sorted(
        benefits, reverse=True
    )
    assert _seqs(web.client.get("/console/events?agency=tax-office&outcome=denied").text) == denied
    assert _seqs(web.client.get("/console/events?actor=caseworker%40benefits-office").text) == sorted(
        benefits, reverse=True
    )
    assert web.demo_citizens is not None
    citizen = web.demo_citizens[0]
    about = _seqs(web.client.get(f"/console/events?citizen={citizen}&action=citizens.read").text)
    assert about == sorted(tax + benefits, reverse=True)
    today = datetime.now(UTC).date()
    window = f"since={today - timedelta(days=1)}&until={today}&action=citizens.read"
    assert _seqs(web.client.get(f"/console/events?{window}").text) == sorted(tax + benefits + denied, reverse=True)
    assert _seqs(web.client.get(f"/console/events?until={today - timedelta(days=2)}").text) == []

    refused = web.client.get("/console/events?since=yesterday&citizen=not-an-id")
    assert refused.status_code == 422 and 'href="#since"' in refused.text and 'href="#citizen"' in refused.text
    # Each view is the API's review event: audit.read, the citizen named in the reason only.
    reviews = [e for e in web.events(action="audit.read") if e["actor"] == "compliance@vault"]
    assert f"events citizen={citizen}" in {e["reason"] for e in reviews}
    assert all(e["citizen_id"] is None for e in reviews)


def test_the_log_pages_by_cursor_newest_or_oldest_first_without_overlap(web: WebWorld) -> None:
    seqs = _reads(web, TAX_CASEWORKER, 61, purpose="paging-test")
    web.sign_in("compliance@vault")
    first = web.client.get("/console/events?purpose=paging-test")
    assert _seqs(first.text) == sorted(seqs, reverse=True)[:50]
    found = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert found
    second = web.client.get(found.group(1).replace("&amp;", "&"))
    assert _seqs(second.text) == sorted(seqs, reverse=True)[50:]
    assert 'rel="next"' not in second.text and "First page" in second.text

    oldest = web.client.get("/console/events?purpose=paging-test&order=oldest")
    assert _seqs(oldest.text) == seqs[:50]
    found = re.search(r'href="([^"]+)" rel="next"', oldest.text)
    assert found and _seqs(web.client.get(found.group(1).replace("&amp;", "&")).text) == seqs[50:]


def test_an_agency_officer_sees_their_agency_only_whatever_the_query_says(web: WebWorld) -> None:
    tax = _reads(web, TAX_CASEWORKER, 2)
    (benefits,) = _reads(web, BENEFITS_CASEWORKER, 1)
    officer = _officer_of(web, "tax-office")

    listed = officer.get("/console/events?action=citizens.read")
    assert listed.status_code == 200 and _seqs(listed.text) == sorted(tax, reverse=True)
    assert officer.get("/console/events?agency=benefits-office").status_code == 403
    assert officer.get(f"/console/events/{benefits}").status_code == 404
    assert officer.get(f"/console/events/{tax[0]}").status_code == 200
    assert officer.get("/console/export/download?format=csv&agency=benefits-office").status_code == 403
    assert officer.get("/console/reports?agency=benefits-office").status_code == 403
    exported = officer.get("/console/export/download?format=csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {r["agency"] for r in rows} == {"tax-office"}
    report = officer.get("/console/reports")
    assert report.status_code == 200 and "benefits-office" not in report.text


def _finished(web: WebWorld, started: Response) -> str:
    """Follow a "verify now" from its POST's answer to the integrity page it ends on; that page's location."""
    assert started.status_code == 303, started.text
    run_page = started.headers["location"]
    assert re.fullmatch(r"/console/integrity/runs/[0-9a-f-]{36}", run_page), run_page
    for _ in range(600):  # the walk runs in a thread beside the request: wait for it, whatever it takes
        answer = web.client.get(run_page)
        if answer.status_code == 303:
            assert answer.headers["location"] == "/console/integrity?verified=1"
            return str(answer.headers["location"])
        assert answer.status_code == 200 and "Verifying the audit log" in answer.text, answer.text
        time.sleep(0.05)
    raise AssertionError("the verification never finished")


def test_verify_now_shows_intact_then_the_first_bad_event_after_tampering(web: WebWorld) -> None:
    web.sign_in("compliance@vault")
    first = web.post("/console/integrity/verify", {}, page="/console/integrity")
    page = web.client.get(_finished(web, first))
    assert "Verification finished" in page.text and "intact" in page.text and "first bad event" not in page.text
    assert _last(web, "audit.verify")["reason"] == "intact"

    (victim,) = _reads(web, TAX_CASEWORKER, 1)
    _reads(web, TAX_CASEWORKER, 2)
    drop_guards(web.vault.data_engine)
    with web.vault.data_engine.begin() as conn:
        conn.execute(audit_events.update().where(audit_events.c.seq == victim).values(actor="someone-else"))

    again = web.post("/console/integrity/verify", {}, page="/console/integrity")
    page = web.client.get(_finished(web, again))
    assert "The log does not match: edited" in page.text
    assert f'The first bad event is <a href="/console/events/{victim}">event {victim}</a>' in page.text


def test_verify_now_and_deferral_decisions_need_this_sessions_csrf_token(web: WebWorld) -> None:
    (seq,) = _reads(web, BENEFITS_CASEWORKER, 1)
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"events": [seq], "legal_basis": "fraud-investigation", "until": until}
    made = web.client.post("/v1/audit/deferrals", json=body, headers=web.benefits)
    assert made.status_code == 201, made.text
    deferral = made.json()["id"]
    web.sign_in("compliance@vault")
    verifies = len(web.events(action="audit.verify"))
    other = web.browser()
    web.sign_in("citizen-0", client=other)
    foreign = web.csrf("/portal", other)

    for token in (None, foreign):
        form = {} if token is None else {"csrf_token": token}
        assert web.client.post("/console/integrity/verify", data=form, headers=FORM).status_code == 403
        for verdict in ("approve", "reject"):
            refused = web.client.post(f"/console/deferrals/{deferral}/{verdict}", data=form, headers=FORM)
            refusal_page(refused, 403, "csrf")
    assert len(web.events(action="audit.verify")) == verifies
    flags = web.client.get("/console/flags")
    assert f"/console/deferrals/{deferral}/approve" in flags.text  # still pending

    approved = web.post(f"/console/deferrals/{deferral}/approve", {}, page="/console/flags")
    assert approved.status_code == 303 and approved.headers["location"] == "/console/flags?done=approved"
    assert "The deferral was approved." in web.client.get(approved.headers["location"]).text
    decided = _last(web, "audit.defer")
    assert decided["actor"] == "compliance@vault" and f"deferral {deferral} approved" in str(decided["reason"])
    twice = web.post(f"/console/deferrals/{deferral}/reject", {}, page="/console/flags")
    assert twice.headers["location"] == "/console/flags?problem=conflict"


def test_the_flags_page_shows_the_apis_flags(web: WebWorld) -> None:
    web.sign_in("compliance@vault")
    api = web.client.get("/v1/audit/flags", headers=web.compliance).json()
    before = [e for e in web.events(action="audit.read") if e["reason"] == "flags"]
    page = web.client.get("/console/flags")
    assert page.status_code == 200 and api
    for flag in api:
        assert flag["rule"] in page.text
    after = [e for e in web.events(action="audit.read") if e["reason"] == "flags"]
    assert len(after) == len(before) + 1 and after[-1]["actor"] == "compliance@vault"


def test_exports_download_parse_and_are_audited_as_audit_export(web: WebWorld) -> None:
    tax = _reads(web, TAX_CASEWORKER, 3)
    web.sign_in("compliance@vault")
    page = web.client.get("/console/export")
    assert page.status_code == 200 and 'value="csv"' in page.text and 'value="jsonl"' in page.text

    as_csv = web.client.get("/console/export/download?format=csv&agency=tax-office&action=citizens.read")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["seq"]) for r in rows] == tax
    exported = _last(web, "audit.export")
    assert exported["actor"] == "compliance@vault" and "3 events, csv" in str(exported["reason"])
    assert "agency=tax-office" in str(exported["reason"])

    as_jsonl = web.client.get("/console/export/download?format=jsonl&agency=tax-office&action=citizens.read")
    assert as_jsonl.status_code == 200 and as_jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in as_jsonl.text.splitlines() if line]
    assert [e["seq"] for e in lines if "seq" in e and e.get("action") == "citizens.read"] == tax
    assert "3 events, jsonl" in str(_last(web, "audit.export")["reason"])


def test_script_in_an_audit_reason_or_actor_renders_as_text(web: WebWorld) -> None:
    payload = "<script>alert('x')</script>"
    (seq,) = web.vault.audit.record(
        Actor(f"{payload}@tax-office", "caseworker", "tax-office"), Event("citizens.read", reason=payload)
    )
    web.sign_in("compliance@vault")
    for path in (
        "/console/events",
        f"/console/events/{seq}",
        "/console/events?order=oldest",
        "/console/reports",
        "/console/flags",
    ):
        page = web.client.get(path)
        assert page.status_code == 200, path
        assert "<script>" not in page.text, path
    assert "&lt;script&gt;" in web.client.get(f"/console/events/{seq}").text


def test_citizens_and_caseworkers_are_refused_the_console(web: WebWorld) -> None:
    for person in ("citizen-0", "caseworker@benefits-office"):
        browser = web.browser()
        assert web.sign_in(person, client=browser).status_code == 303
        for path in ("/console", "/console/events", "/console/integrity", "/console/export/download?format=csv"):
            assert browser.get(path).status_code == 403, (person, path)
        refused = browser.post("/console/integrity/verify", data={"csrf_token": "any"}, headers=FORM)
        assert refused.status_code == 403


def test_a_stranger_is_sent_to_sign_in_and_back(web: WebWorld) -> None:
    answer = web.client.get("/console/events?outcome=denied")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/console/events")
    assert web.sign_in("compliance@vault").headers["location"] == "/console"
