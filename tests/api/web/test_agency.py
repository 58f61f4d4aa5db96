"""The officers' console: registrars find, read and correct profiles, caseworkers request, follow,
read and revoke grants, through the API's services and audit; every refusal in plain words. All
people and agencies are fictitious."""

from __future__ import annotations

import re
import uuid

import pytest

from api.web.agency_refusals import REFUSALS, STATUS_WORDS
from tests.support.api_world import problem
from tests.support.web_world import FORM, WebWorld, refusal_page
from vault import demo
from vault.audit.log import Actor
from vault.consent import coverage

REGISTRAR = "registrar@civil-registry"
SCRIPT = '<script>alert("stored")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;stored&#34;)&lt;/script&gt;"


def _citizen(web: WebWorld, i: int = 0) -> str:
    assert web.demo_citizens is not None
    return web.demo_citizens[i]


def _events(web: WebWorld, citizen: str, action: str) -> list[dict[str, object]]:
    return [e for e in web.events(citizen_id=citizen) if e["action"] == action]


def _correction(web: WebWorld, citizen: str, **changes: str) -> dict[str, str]:
    """The correction form as shown (every field and its hidden original), with ``changes`` typed in."""
    form = web.client.get(f"/agency/citizens/{citizen}/correct")
    assert form.status_code == 200, form.text
    shown = dict(re.findall(r'name="(was-[a-z_]+)" value="([^"]*)"', form.text))
    typed = {name.removeprefix("was-"): value for name, value in shown.items()}
    return {**shown, **typed, **changes}


def _request_grant(web: WebWorld, **form: str) -> tuple[str, str]:
    """Post the grant form (the page of its purpose); the grant's id and the page it lands on."""
    sent = web.post("/agency/grants", form, page=f"/agency/grants/new?purpose={form['purpose']}")
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    found = re.fullmatch(r"/agency/grants/([0-9a-f-]{36})\?done=requested", location)
    assert found, location
    return found.group(1), web.client.get(location).text


def test_a_registrar_finds_a_citizen_by_national_id_and_email_and_the_lookup_is_audited(web: WebWorld) -> None:
    citizen = _citizen(web)
    person = demo.profile(0)
    web.sign_in(REGISTRAR)
    home = web.client.get("/agency")
    assert home.status_code == 200 and 'href="/agency/citizens"' in home.text
    by_id = web.post("/agency/citizens", {"field": "national_id", "value": person["national_id"].replace("-", " ")})
    assert by_id.status_code == 200 and f'href="/agency/citizens/{citizen}"' in by_id.text
    by_email = web.post("/agency/citizens", {"field": "email", "value": person["email"].upper()})
    assert f'href="/agency/citizens/{citizen}"' in by_email.text
    nobody = web.post("/agency/citizens", {"field": "national_id", "value": "999-999-999"})
    assert nobody.status_code == 200 and "No citizen has this value." in nobody.text
    malformed = web.post("/agency/citizens", {"field": "national_id", "value": "12"})
    assert malformed.status_code == 422 and 'href="#value"' in malformed.text and 'value="12"' in malformed.text
    lookups = [e for e in _events(web, citizen, "citizens.lookup") if e["actor"] == REGISTRAR]
    assert len(lookups) == 2  # one per search that found the citizen (the sign-in page's are the operator's)


def test_a_registrar_reads_a_profile_with_the_same_audit_as_the_api_read(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in(REGISTRAR)
    profile = web.client.get(f"/agency/citizens/{citizen}")
    assert profile.status_code == 200
    for value in demo.profile(0).values():
        assert str(value) in profile.text
    assert "From civil-registry" in profile.text and "Correct this profile" in profile.text
    (read,) = _events(web, citizen, "citizens.read")
    assert read["actor"] == REGISTRAR and read["outcome"] == "allowed"
    absent = web.client.get(f"/agency/citizens/{uuid.uuid4()}")
    assert absent.status_code == 404 and REFUSALS["not-found"] in absent.text


def test_a_correction_is_saved_audited_and_an_emptied_optional_field_is_removed(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in(REGISTRAR)
    form = _correction(web, citizen, address="12 Elsewhere Lane, Nowhereville", phone="")
    assert "empty the box to remove it" in web.client.get(f"/agency/citizens/{citizen}/correct").text
    saved = web.post(f"/agency/citizens/{citizen}/correct", form, page=f"/agency/citizens/{citizen}/correct")
    assert saved.status_code == 303 and saved.headers["location"] == f"/agency/citizens/{citizen}?done=1"
    assert "The profile was corrected." in web.client.get(saved.headers["location"]).text
    now = web.client.get(f"/v1/citizens/{citizen}", headers=web.registrar).json()
    assert now["fields"]["address"] == "12 Elsewhere Lane, Nowhereville" and "phone" not in now["fields"]
    assert now["fields"]["given_name"] == demo.profile(0)["given_name"]
    (corrected,) = _events(web, citizen, "citizens.correct")
    # Only what was changed is sent: the untouched fields keep their source and date.
    assert corrected["actor"] == REGISTRAR and corrected["fields"] == ["address", "phone"]


def test_a_bad_value_shows_the_error_summary_linking_to_the_field_and_keeps_what_was_typed(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in(REGISTRAR)
    form = _correction(web, citizen, date_of_birth="17/04/1990", given_name="", address="3 New Road")
    refused = web.post(f"/agency/citizens/{citizen}/correct", form, page=f"/agency/citizens/{citizen}/correct")
    assert refused.status_code == 422 and "There is a problem" in refused.text
    assert 'href="#date_of_birth"' in refused.text and "not a date in YYYY-MM-DD form" in refused.text
    assert 'href="#given_name"' in refused.text and "Given name: required" in refused.text
    assert 'value="17/04/1990"' in refused.text and 'value="3 New Road"' in refused.text
    now = web.client.get(f"/v1/citizens/{citizen}", headers=web.registrar).json()
    assert now["fields"]["address"] == demo.profile(0)["address"]  # nothing was saved
    registrar = Actor(REGISTRAR, "registrar", "civil-registry", None)
    notes = {"health_notes": "Routine check-up.\nNo findings."}
    web.vault.profiles.correct(uuid.UUID(citizen), notes, "civil-registry", actor=registrar)
    as_sent = _correction(web, citizen)
    as_sent["health_notes"] = as_sent["health_notes"].replace("\n", "\r\n")  # a textarea's line breaks, as sent
    unchanged = web.post(f"/agency/citizens/{citizen}/correct", as_sent, page=f"/agency/citizens/{citizen}/correct")
    assert unchanged.status_code == 422 and "You did not change anything" in unchanged.text


def test_a_registrar_of_another_agency_cannot_correct_a_profile(web: WebWorld) -> None:
    citizen = _citizen(web)
    web.sign_in("registrar@tax-office")
    assert web.client.get(f"/agency/citizens/{citizen}/correct").status_code == 403
    token = web.csrf("/agency")
    sent = web.client.post(
        f"/agency/citizens/{citizen}/correct", data={"csrf_token": token, "address": "Elsewhere"}, headers=FORM
    )
    refusal_page(sent, 403, "policy")
    assert web.client.get(f"/agency/citizens/{citizen}").status_code == 403
    assert 'href="/agency/citizens"' not in web.client.get("/agency").text  # no link to what the policy refuses
    assert _events(web, citizen, "citizens.correct") == []
    refusals = [e for e in web.events(outcome="denied") if e["action"] == "citizens.update"]
    assert refusals and refusals[-1]["actor"] == "registrar@tax-office"


def test_a_consent_purpose_request_waits_for_the_citizens_consent_in_plain_words(web: WebWorld) -> None:
    citizen = _citizen(web)
    person = demo.profile(0)
    web.sign_in("caseworker@benefits-office")
    chooser = web.client.get("/agency/grants/new")
    assert chooser.status_code == 200 and "Decide eligibility for housing and income benefits" in chooser.text
    assert "tax-assessment" not in chooser.text  # only the purposes the agency may use
    form = web.client.get("/agency/grants/new?purpose=benefit-eligibility").text
    assert 'type="checkbox"' in form and 'value="income"' in form and 'value="health_notes"' not in form
    grant_id, page = _request_grant(
        web,
        purpose="benefit-eligibility",
        fields="email",
        citizens=person["national_id"],
        duration_hours="24",
        max_uses="2",
        case_ref="",
    )
    assert "Waiting for the citizen&#39;s consent" in page and "approve it" in page
    assert "Read the data" not in page
    assert web.grant(web.benefits, grant_id)["status"] == "pending"
    listed = web.client.get("/agency/grants")
    assert f'href="/agency/grants/{grant_id}"' in listed.text and "Waiting for the citizen&#39;s consent" in listed.text
    asked = _events(web, citizen, "grants.request")  # the pending request, and the refusal to grant now
    assert {(e["actor"], e["grant_id"]) for e in asked} >= {("caseworker@benefits-office", grant_id)}


def test_a_statutory_grant_is_read_showing_exactly_the_granted_fields_then_revoked_and_refused(web: WebWorld) -> None:
    citizen = _citizen(web, 1)
    person = demo.profile(1)  # an income other than 0, which any page would "contain"
    web.sign_in("caseworker@tax-office")
    grant_id, page = _request_grant(
        web,
        purpose="tax-assessment",
        fields="income",
        citizens=f"{citizen}\n",
        duration_hours="1",
        max_uses="3",
        case_ref="TX-2026-7",
    )
    assert "Active: the data can be read." in page and "a legal obligation" in page
    data = web.post(f"/agency/grants/{grant_id}/read", {}, page=f"/agency/grants/{grant_id}")
    assert data.status_code == 200 and citizen in data.text and str(person["income"]) in data.text
    for other in ("given_name", "family_name", "email", "address", "national_id"):
        assert str(person[other]) not in data.text, other
    reads = _events(web, citizen, "grants.read")
    assert len(reads) == 1, reads
    (read,) = reads
    assert read["actor"] == "caseworker@tax-office" and read["fields"] == ["income"]

    revoked = web.post(f"/agency/grants/{grant_id}/revoke", {}, page=f"/agency/grants/{grant_id}")
    assert revoked.status_code == 303 and "The grant was revoked." in web.client.get(revoked.headers["location"]).text
    refused = web.post(f"/agency/grants/{grant_id}/read", {}, page=f"/agency/grants/{grant_id}")
    assert refused.status_code == 403
    assert REFUSALS["grant-revoked"] in refused.text and str(person["income"]) not in refused.text
    assert "<code>grant-revoked</code>" in refused.text  # the code beside the sentence, never alone
    problem(web.read(web.tax, grant_id), 403, "grant-revoked")  # the API agrees


def test_a_refused_request_is_explained_in_plain_words_on_the_form(web: WebWorld) -> None:
    web.sign_in("caseworker@benefits-office")
    page = "/agency/grants/new?purpose=benefit-eligibility"
    two = f"{_citizen(web, 0)}\n{_citizen(web, 1)}"
    form = {"purpose": "benefit-eligibility", "fields": "email", "duration_hours": "24", "max_uses": "1"}
    several = web.post("/agency/grants", {**form, "citizens": two}, page=page)
    assert several.status_code == 422 and REFUSALS["consent-required"] in several.text
    outside = web.post("/agency/grants", {**form, "fields": "health_notes", "citizens": two}, page=page)
    assert outside.status_code == 422 and 'href="#fields"' in outside.text
    unknown = web.post("/agency/grants", {**form, "citizens": "not an id"}, page=page)
    assert unknown.status_code == 422 and "Line 1 is neither a national id nor a vault id" in unknown.text
    assert ">not an id</textarea>" in unknown.text


def test_every_consent_and_grant_refusal_reason_has_a_sentence() -> None:
    reasons = {
        coverage.REQUIRED,
        coverage.WITHDRAWN,
        coverage.EXPIRED,
        coverage.PURPOSE_CHANGED,
        coverage.NARROWED,
        "purpose-retired",
        "purpose-not-for-agency",
        "purpose-narrowed",
        "fields-outside-purpose",
        "agency-retired",
        "grant-expired",
        "grant-exhausted",
        "grant-revoked",
        "revoked-by-agency",
        "citizen-erased",
    }
    assert reasons <= set(REFUSALS)
    assert {"active", "pending", "suspended", "expired", "exhausted", "revoked"} <= set(STATUS_WORDS)


@pytest.mark.parametrize(
    ("person", "path"),
    [
        (REGISTRAR, "/agency/citizens"),
        (REGISTRAR, "/agency/citizens/{citizen}/correct"),
        ("caseworker@tax-office", "/agency/grants"),
        ("caseworker@tax-office", "/agency/grants/{grant}/read"),
        ("caseworker@tax-office", "/agency/grants/{grant}/revoke"),
    ],
)
def test_every_agency_form_refuses_a_missing_or_foreign_csrf_token_and_changes_nothing(
    web: WebWorld, person: str, path: str
) -> None:
    citizen = _citizen(web)
    grant = web.granted(web.tax, citizen_id=citizen, purpose="tax-assessment", fields=["income"], max_uses=5)
    target = path.format(citizen=citizen, grant=grant["id"])
    web.sign_in(person)
    other = web.browser()
    web.sign_in(person, client=other)
    foreign = web.csrf("/agency", other)
    form = {
        "field": "national_id",
        "value": demo.profile(0)["national_id"],
        "address": "Elsewhere",
        "was-address": demo.profile(0)["address"],
        "purpose": "tax-assessment",
        "fields": "income",
        "citizens": citizen,
        "duration_hours": "1",
        "max_uses": "1",
    }
    before = len(web.events())
    for token in (None, foreign):
        sent = web.client.post(target, data=form | ({"csrf_token": token} if token else {}), headers=FORM)
        refusal_page(sent, 403, "csrf")
    after = [e for e in web.events()[before:] if e["outcome"] == "allowed" and e["action"] != "audit.read"]
    assert after == [], after  # nothing looked up, corrected, requested, read or revoked
    assert web.grant(web.tax, grant["id"])["uses"] == 0 and web.grant(web.tax, grant["id"])["status"] == "active"


def test_a_script_stored_in_a_profile_renders_as_text_on_the_profile_and_grant_data_pages(web: WebWorld) -> None:
    citizen = _citizen(web)
    registrar = Actor(REGISTRAR, "registrar", "civil-registry", None)
    web.vault.profiles.correct(uuid.UUID(citizen), {"address": SCRIPT}, "civil-registry", actor=registrar)
    web.sign_in(REGISTRAR)
    for path in (f"/agency/citizens/{citizen}", f"/agency/citizens/{citizen}/correct"):
        shown = web.client.get(path)
        assert shown.status_code == 200 and "<script" not in shown.text and ESCAPED in shown.text, path

    assert web.consent(citizen, agency="benefits-office", purpose="benefit-eligibility", categories=["contact"])
    grant = web.granted(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["address"])
    caseworker = web.browser()
    web.sign_in("caseworker@benefits-office", client=caseworker)
    data = web.post(f"/agency/grants/{grant['id']}/read", {}, client=caseworker, page=f"/agency/grants/{grant['id']}")
    assert data.status_code == 200 and "<script" not in data.text and ESCAPED in data.text


def test_the_agencys_grants_are_listed_newest_first_a_page_at_a_time_and_another_agencys_are_not_shown(
    web: WebWorld,
) -> None:
    citizen = _citizen(web)
    mine = [
        web.granted(web.tax, citizen_id=citizen, purpose="tax-assessment", fields=["income"])["id"] for _ in range(3)
    ]
    asked = web.ask(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["email"])
    theirs = problem(asked, 403, "consent-required")["grant_id"]
    web.sign_in("caseworker@tax-office")
    page, next_before = web.vault.grants.of_agency("tax-office", None, 2)
    assert [g.id for g in page] == mine[:0:-1] and next_before == mine[1]
    rest, last = web.vault.grants.of_agency("tax-office", next_before, 2)
    assert [g.id for g in rest] == [mine[0]] and last is None
    listed = web.client.get("/agency/grants")
    assert listed.status_code == 200 and all(f'href="/agency/grants/{g}"' in listed.text for g in mine)
    assert theirs not in listed.text
    foreign = web.client.get(f"/agency/grants/{theirs}")
    assert foreign.status_code == 404 and REFUSALS["not-found"] in foreign.text
    token = web.csrf("/agency/grants")
    for action in ("read", "revoke"):
        sent = web.client.post(f"/agency/grants/{theirs}/{action}", data={"csrf_token": token}, headers=FORM)
        assert sent.status_code == 404 and REFUSALS["not-found"] in sent.text, action
    assert web.grant(web.benefits, theirs)["status"] == "pending"
