"""Representation pages (issue 17): a parent chooses to act for their child, sees the banner on
every page, views the child's data and gives a consent for them; the child's access log says so in
plain words; the stored choice is re-checked on every request; mandates are given and withdrawn
by the citizen; a registrar records and ends a guardianship. Every person is fictitious."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.web_world import WebWorld, refusal_page
from vault import demo
from vault.representation import demo as representation_demo

BANNER = "You are acting for Pip Quillfeather (as their parent)."


def _family(web: WebWorld) -> tuple[str, str]:
    """Seed the demo family: (parent id, child id)."""
    representation_demo.seed(web.vault)
    assert web.demo_citizens is not None
    parent = web.demo_citizens[0]
    (child,) = web.vault.profiles.lookup("national_id", representation_demo.child_profile()["national_id"])
    return parent, str(child)


def test_a_parent_acts_for_their_child_with_a_banner_and_the_child_sees_it(web: WebWorld) -> None:
    parent, child = _family(web)
    web.sign_in("citizen-0")
    listing = web.client.get("/portal/acting")
    assert listing.status_code == 200 and "Pip Quillfeather" in listing.text and "Parent" in listing.text
    assert web.post("/portal/acting", {"citizen": child}).headers["location"] == "/portal"

    data = web.client.get("/portal/data")
    assert data.status_code == 200 and BANNER in data.text and "Pip" in data.text
    assert demo.profile(0)["email"] not in data.text  # the child's data, not the parent's
    given = web.post(
        "/portal/consents",
        {"choice": "benefits-office|benefit-eligibility", "expires": ""},
        page="/portal/consents/new",
    )
    assert given.status_code == 303, given.text
    (consent,) = web.vault.consents.find(citizen_id=child)
    assert web.vault.consents.find(citizen_id=parent) == []
    assert consent.purpose == "benefit-eligibility"
    # The session remembers the choice; switching back shows the parent's own data again.
    assert BANNER in web.client.get("/portal/consents").text
    web.post("/portal/acting", {"citizen": ""})
    own = web.client.get("/portal/data")
    assert BANNER not in own.text and demo.profile(0)["email"] in own.text

    child_browser = web.browser()
    web.sign_in(representation_demo.CHILD_KEY, child_browser)
    log = child_browser.get("/portal/access-log").text
    assert "Your parent Ailsa Quillfeather viewed your profile" in log
    assert "Your parent Ailsa Quillfeather gave a consent for you" in log


def test_the_stored_choice_is_rechecked_and_stops_at_majority(web: WebWorld) -> None:
    _, child = _family(web)
    web.sign_in("citizen-0")
    web.post("/portal/acting", {"citizen": child})
    assert web.client.get("/portal/data").status_code == 200
    web.vault.representation.clock = lambda: datetime.now(UTC) + timedelta(days=366 * 10)
    refusal_page(web.client.get("/portal/data"), 403, "child-of-age")
    # The way back still works: the choice page is about the signed-in person themselves.
    assert web.client.get("/portal/acting").status_code == 200
    web.post("/portal/acting", {"citizen": ""})
    assert web.client.get("/portal/data").status_code == 200


def test_a_child_cannot_consent_alone_and_cannot_choose_someone_unrelated(web: WebWorld) -> None:
    _family(web)
    web.sign_in(representation_demo.CHILD_KEY)
    refused = web.post(
        "/portal/consents",
        {"choice": "benefits-office|benefit-eligibility", "expires": ""},
        page="/portal/consents/new",
    )
    refusal_page(refused, 403, "parent-consent-required")
    assert web.demo_citizens is not None
    refusal_page(web.post("/portal/acting", {"citizen": web.demo_citizens[2]}), 403, "no-representation")


def test_a_citizen_gives_and_withdraws_a_mandate_in_the_portal(web: WebWorld) -> None:
    _family(web)
    web.sign_in("citizen-0")
    empty = web.post("/portal/representatives", {"national_id": ""})
    assert empty.status_code == 422 and "There is a problem" in empty.text and 'href="#scope"' in empty.text
    given = web.post("/portal/representatives", {"national_id": demo.profile(2)["national_id"], "scope": "view"})
    assert given.status_code == 303, given.text
    page = web.client.get("/portal/representatives?done=given")
    assert "Casimir Quillfeather" in page.text and "The mandate was recorded." in page.text
    assert web.demo_citizens is not None
    (mandate,) = [r for r in web.vault.representation.of(web.demo_citizens[0])[0] if r.kind == "mandate"]
    withdrawn = web.post(f"/portal/representatives/{mandate.id}/withdraw", {}, page="/portal/representatives")
    assert withdrawn.status_code == 303
    assert web.vault.representation.get(mandate.id).status == "ended"


def test_giving_a_mandate_while_acting_for_someone_is_refused(web: WebWorld) -> None:
    _, child = _family(web)
    web.sign_in("citizen-0")
    web.post("/portal/acting", {"citizen": child})
    refusal_page(web.client.get("/portal/representatives"), 403, "not-delegable")


def test_a_registrar_records_and_ends_a_guardianship(web: WebWorld) -> None:
    assert web.demo_citizens is not None
    ward, guardian = web.demo_citizens[1], web.demo_citizens[2]
    web.sign_in("registrar@civil-registry")
    assert "Record a parent or guardian" in web.client.get("/agency").text
    bad = web.post(
        "/agency/representations",
        {"kind": "parent", "represented_id": ward, "representative_id": "x"},
        page="/agency/representations/new",
    )
    assert bad.status_code == 422 and 'href="#representative_id"' in bad.text
    adult = web.post(
        "/agency/representations",
        {"kind": "parent", "represented_id": ward, "representative_id": guardian, "scope": "view"},
        page="/agency/representations/new",
    )
    assert adult.status_code == 422 and "record a guardianship instead" in adult.text
    form = {"kind": "guardian", "represented_id": ward, "representative_id": guardian, "scope": "view"}
    recorded = web.post("/agency/representations", form, page="/agency/representations/new")
    assert recorded.status_code == 303, recorded.text
    where = recorded.headers["location"].split("?")[0]
    assert "guardian" in web.client.get(where).text
    assert web.post(f"{where}/end", {}, page=where).status_code == 303
    relation_id = where.rsplit("/", 1)[1]
    assert web.vault.representation.get(relation_id).status == "ended"
