"""Stored XSS renders as text on every portal page; a citizen's session never shows another
citizen's data, whatever ids go into URLs and forms; every page route is either public or checked
by the Guard like an API route. All people and agencies are fictitious."""

from __future__ import annotations

import uuid

from tests.support.api_world import problem
from tests.support.routes import authz, flatten
from tests.support.web_world import FORM, WebWorld
from vault.audit.log import Actor
from vault.registry import OPERATOR

SCRIPT = '<script>alert("stored")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;stored&#34;)&lt;/script&gt;"
# Sign-in and its OpenID Connect steps are public by nature; each is rate-limited and audited itself.
PUBLIC_PAGES = {"/", "/login", "/login/demo", "/logout", "/login/oidc", "/login/oidc/callback"}


def _citizen(web: WebWorld, i: int) -> str:
    assert web.demo_citizens is not None
    return web.demo_citizens[i]


def test_script_in_a_profile_field_and_a_purpose_description_renders_as_text_on_every_page(web: WebWorld) -> None:
    citizen = _citizen(web, 0)
    registrar = Actor("registrar@civil-registry", "registrar", "civil-registry", None)
    web.vault.profiles.correct(uuid.UUID(citizen), {"address": SCRIPT}, "civil-registry", actor=registrar)
    web.vault.purposes.create(
        "xss-check", f"Check {SCRIPT} escaping", ["contact"], "consent", None, 365, ["benefits-office"], actor=OPERATOR
    )
    web.sign_in("citizen-0")
    form = {"choice": "benefits-office|xss-check", "expires": ""}
    assert web.post("/portal/consents", form, page="/portal/consents/new").status_code == 303
    asked = web.ask(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["email"])
    problem(asked, 403, "consent-required")
    (consent,) = web.client.get("/v1/me/consents", headers=web.me(citizen)).json()
    pages = [
        "/portal",
        "/portal/data",
        "/portal/consents",
        "/portal/consents/new",
        f"/portal/consents/{consent['id']}/receipts",
        f"/portal/consents/{consent['id']}/withdraw",
        "/portal/requests",
        "/portal/access-log",
        "/portal/export",
    ]
    shown = 0
    for path in pages:
        page = web.client.get(path)
        assert page.status_code == 200, path
        assert "<script" not in page.text, path
        shown += ESCAPED in page.text
    assert shown >= 5  # data, consents, the new-consent form, receipts, withdraw
    refused = web.post("/portal/consents", {"choice": SCRIPT, "expires": SCRIPT}, page="/portal/consents/new")
    assert refused.status_code == 422 and "<script" not in refused.text and ESCAPED in refused.text


def test_a_citizen_cannot_reach_another_citizens_consent_or_request_by_id(web: WebWorld) -> None:
    other = _citizen(web, 1)
    given = web.consent(other, agency="benefits-office", purpose="benefit-eligibility", categories=["identity"])
    assert given.status_code == 201
    theirs = given.json()["id"]
    asked = web.ask(web.benefits, citizen_id=other, purpose="benefit-eligibility", fields=["email"])
    request_id = problem(asked, 403, "consent-required")["grant_id"]

    web.sign_in("citizen-0")
    for path in (
        f"/portal/consents/{theirs}/receipts",
        f"/portal/consents/{theirs}/receipts.json",
        f"/portal/consents/{theirs}/withdraw",
    ):
        assert web.client.get(path).status_code == 404, path
    token = web.csrf("/portal/consents")
    withdraw = web.client.post(f"/portal/consents/{theirs}/withdraw", data={"csrf_token": token}, headers=FORM)
    assert withdraw.status_code == 404
    form = {"csrf_token": token, f"until-{request_id}": "keep"}
    approve = web.client.post(f"/portal/requests/{request_id}/approve", data=form, headers=FORM)
    assert approve.status_code == 404
    assert [c["status"] for c in web.client.get("/v1/me/consents", headers=web.me(other)).json()] == ["active"]
    assert web.grant(web.benefits, request_id)["status"] == "pending"
    assert web.client.get("/portal/requests").text.count("benefits-office:") == 0
    assert other not in web.client.get("/portal/data").text + web.client.get("/portal/export.json").text


def test_an_officer_session_is_refused_on_the_citizen_portal_by_policy(web: WebWorld) -> None:
    web.sign_in("registrar@civil-registry")
    refused = web.client.get("/portal/data")
    assert refused.status_code == 403
    assert web.refusal_event(refused)["action"] == "me.read"


def test_every_page_is_public_or_checked_by_the_guard_and_sends_strangers_to_sign_in(web: WebWorld) -> None:
    rules = {(r[2], r[3]) for r in web.client.app.state.guard.policy.rules()}  # type: ignore[attr-defined]
    routes = flatten(web.client.app.routes)  # type: ignore[attr-defined]
    pages = [r for r in routes if r.endpoint.__module__.startswith("api.web")]
    assert len(pages) >= 15
    for route in pages:
        assert not route.include_in_schema, route.path
        if route.path in PUBLIC_PAGES:
            continue
        markers = authz(route.dependant)
        assert markers and markers <= rules, route.path
        path = route.path.replace("{consent_id}", "0" * 8 + "-0000-4000-8000-" + "0" * 12).replace(
            "{grant_id}", "0" * 8 + "-0000-4000-8000-" + "0" * 12
        )
        for method in route.methods or ():
            answer = web.client.request(method, path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
