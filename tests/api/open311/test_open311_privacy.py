"""The public Open311 views publish what a city's open 311 feed publishes minus anything personal
(issue 15): never the reporter's name, email, phone, account or device id, the description only
redacted, no point that identifies a home, nothing of person-centred services. Every person,
number and address here is invented."""

from __future__ import annotations

from tests.support.api_world import ODILE
from tests.support.open311_client import Open311World, conforms, is_error_list
from vault.audit.log import Actor
from vault.interactions.model import NewInteraction

WORKS = Actor("caseworker@public-works", "caseworker", "public-works")
TEXT_PHONE = "+44 20 7946 0958"
TEXT_EMAIL = "quentin.marker@example.org"
PERSONAL = {
    "first_name": "Quentin",
    "last_name": "Markerfield",
    "email": "q.markerfield.contact@example.org",
    "phone": "+1 212 555 0147",
    "device_id": "DEVICE-8F3A-TEST",
    "account_id": "ACCT-991-TEST",
    "media_url": "https://photos.example.org/quentin-markerfield/hole.jpg",
    "address_string": "12 Quibble Court, Nowhereville",
}


def _every_public_view(o: Open311World, sid: str) -> str:
    answers = [
        o.get("requests.json"),
        o.get("requests.xml"),
        o.get(f"requests/{sid}.json"),
        o.get(f"requests/{sid}.xml"),
        o.get(f"tokens/{sid}.json"),
        o.get("requests.json", service_request_id=sid),
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return "\n".join(a.text for a in answers)


def test_no_public_view_carries_the_reporter_or_the_unredacted_description(o: Open311World) -> None:
    description = f"Huge pothole, it broke my wheel. Call me on {TEXT_PHONE} or write to {TEXT_EMAIL}."
    sid = o.file(*PERSONAL.items(), description=description)
    published = _every_public_view(o, sid)
    for value in [TEXT_PHONE, TEXT_EMAIL, *PERSONAL.values(), "Quibble", "quentin"]:
        assert value.lower() not in published.lower(), value
    [item] = conforms("requests.json", o.get(f"requests/{sid}.json"))
    assert item["description"].startswith("Huge pothole, it broke my wheel. Call me on [")
    assert item["media_url"] is None and item["address_id"] is None


def test_a_citizen_linked_request_names_nobody(o: Open311World) -> None:
    odile = o.w.citizen(ODILE)
    sid = o.file(headers=o.w.me(odile), description="The hole is growing.")
    published = _every_public_view(o, sid)
    for value in [odile, ODILE["email"], ODILE["phone"], ODILE["family_name"], ODILE["national_id"]]:
        assert str(value) not in published, value


def test_coordinates_are_coarsened_and_a_home_gets_only_its_area(o: Open311World) -> None:
    street = o.file(lat="45.021387", long="7.101249")
    [item] = conforms("requests.json", o.get(f"requests/{street}.json"))
    assert (item["lat"], item["long"]) == (45.021, 7.101) and item["address"] == "Centre"
    bin_type = ("attribute[bin_type]", "recycling")
    home = o.file(bin_type, service_code="missed-collection", lat="45.021387", long="7.101249")
    [item] = conforms("requests.json", o.get(f"requests/{home}.json"))
    assert item["lat"] is None and item["long"] is None and item["address"] == "Centre"
    typed = o.file(address_string="12 Quibble Court, Nowhereville", lat="", long="")
    [item] = conforms("requests.json", o.get(f"requests/{typed}.json"))
    assert item["lat"] is None and "Quibble" not in str(item)


def test_staff_notes_are_published_redacted_and_the_citizens_words_not_at_all(o: Open311World) -> None:
    odile = o.w.citizen(ODILE)
    sid = o.file(headers=o.w.me(odile))
    works = o.w.vault.interactions
    works.change_status(WORKS, sid, "resolved", note=f"Filled; the resident on {TEXT_PHONE} was told.")
    citizen = Actor(odile, "citizen", "-")
    works.rate(citizen, sid, 2, comment=f"Slow. Ring me on {ODILE['phone']} next time.")
    [item] = conforms("requests.json", o.get(f"requests/{sid}.json"))
    assert item["status_notes"].startswith("Resolved. Filled; the resident on [")
    published = _every_public_view(o, sid)
    assert TEXT_PHONE not in published and "Slow." not in published and str(ODILE["phone"]) not in published


def test_person_centred_services_are_neither_offered_nor_published(o: Open311World) -> None:
    odile = o.w.citizen(ODILE)
    question = o.w.vault.interactions.create(
        Actor(odile, "citizen", "-"), NewInteraction(service_code="tax-question", text="Why is my bill so high?")
    )
    codes = {s["service_code"] for s in conforms("services.json", o.get("services.json"))}
    assert "tax-question" not in codes and "clinic-appointment" not in codes and "benefit-enquiry" not in codes
    is_error_list(o.get("services/tax-question.json"), 404)
    is_error_list(o.get(f"requests/{question.id}.json"), 404)
    is_error_list(o.get(f"tokens/{question.id}.json"), 404)
    assert conforms("requests.json", o.get("requests.json", service_request_id=question.id)) == []
    refused = o.post(o.form({"service_code": "tax-question", "description": "Why is my bill so high?"}))
    assert "unknown-service" in is_error_list(refused, 400)
