"""Interactions in the vault (issue 15) on SQLite and a real PostgreSQL: intake, sealed texts,
service levels, the status flow and its refusals, ratings, facts in step, erasure. Every person,
number and address here is invented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.stores import backend_vault, stored_bytes
from vault.audit.log import Actor
from vault.audit.tables import audit_events
from vault.demo import profile
from vault.errors import NotFound, Refused
from vault.interactions.errors import InteractionInvalid, TransitionRefused
from vault.interactions.facts import interaction_facts
from vault.interactions.model import Contact, Location, NewInteraction, Search
from vault.interactions.tables import interactions
from vault.runtime import Vault

PHONE = "+1 212 555 0147"
EMAIL = "quentin.marker@example.org"
TEXT = f"The bin outside was not emptied again. Call me on {PHONE} or write to {EMAIL}."
WORKS = Actor("caseworker@public-works", "caseworker", "public-works")
CLINIC = Actor("caseworker@city-clinic", "caseworker", "city-clinic")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    v = backend_vault(request, tmp_path)
    yield v
    v.close()


@pytest.fixture
def clock(vault: Vault) -> Clock:
    c = Clock()
    vault.interactions._clock = c
    return c


def citizen(vault: Vault, i: int = 1) -> Actor:
    cid = vault.profiles.create(profile(900 + i), "civil-registry")
    return Actor(str(cid), "citizen", "-")


def bin_request(**changes: object) -> NewInteraction:
    base: dict[str, object] = {
        "service_code": "missed-collection",
        "text": TEXT,
        "attributes": {"bin_type": "recycling"},
        "location": Location("12 Quibble Court, Nowhereville", 45.03, 7.10),
        "contact": Contact("Quentin Marker", EMAIL, PHONE),
    }
    return NewInteraction(**{**base, **changes})  # type: ignore[arg-type]


def test_a_citizen_files_a_request_and_reads_it_back_with_the_pii_found_and_a_redacted_copy(
    vault: Vault, clock: Clock
) -> None:
    me = citizen(vault)
    made = vault.interactions.create(me, bin_request())
    assert (made.agency, made.status, made.area) == ("public-works", "open", "centre")
    item = vault.interactions.get(me, made.id)
    assert item.text == TEXT
    assert item.contact == Contact("Quentin Marker", EMAIL, PHONE)
    assert item.redacted_text is not None
    assert PHONE not in item.redacted_text and EMAIL not in item.redacted_text
    assert {"PHONE_NUMBER", "EMAIL_ADDRESS"} <= set(item.pii_found)
    assert item.home is True  # an address was given
    public = vault.interactions.public(WORKS, made.id)
    assert public.text is None and public.contact is None and public.location is None and public.citizen_id is None


def test_reads_are_audited_naming_the_item_never_its_text(vault: Vault, clock: Clock) -> None:
    me = citizen(vault)
    made = vault.interactions.create(me, bin_request())
    vault.interactions.get(WORKS, made.id)
    with vault.data_engine.connect() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.action == "interactions.read")).all()
    assert len(rows) == 1
    assert f"interaction:{made.id}" in rows[0].fields and rows[0].citizen_id == me.subject
    assert PHONE not in str(tuple(rows[0])) and "bin outside" not in str(tuple(rows[0]))


def test_the_full_flow_keeps_times_and_facts_in_step_and_a_rating_comes_only_after_resolution(
    vault: Vault, clock: Clock
) -> None:
    me = citizen(vault)
    made = vault.interactions.create(me, bin_request())
    with pytest.raises(TransitionRefused) as early:
        vault.interactions.rate(me, made.id, 5)
    assert early.value.reason == "not-resolved"
    for hours, status in ((1, "acknowledged"), (2, "in_progress"), (5, "resolved")):
        clock.now += timedelta(hours=hours)
        vault.interactions.change_status(WORKS, made.id, status, note=f"now {status}")
    vault.interactions.assign(WORKS, made.id, "waste")
    vault.interactions.rate(me, made.id, 4, "Quick, thank you")
    with pytest.raises(TransitionRefused) as twice:
        vault.interactions.rate(me, made.id, 5)
    assert twice.value.reason == "already-rated"
    vault.interactions.change_status(WORKS, made.id, "closed")
    with pytest.raises(TransitionRefused) as closed:
        vault.interactions.change_status(WORKS, made.id, "resolved")
    assert closed.value.reason == "invalid-transition"
    item = vault.interactions.get(me, made.id)
    assert list(item.status_times) == ["open", "acknowledged", "in_progress", "resolved", "closed"]
    assert [h.kind for h in item.history] == ["created", "status", "status", "status", "assign", "rating", "status"]
    assert item.history[1].note == "now acknowledged" and item.rating_comment == "Quick, thank you"
    with vault.data_engine.connect() as conn:
        fact = conn.execute(select(interaction_facts)).one()
    assert (fact.status, fact.rating, fact.agency, fact.area) == ("closed", 4, "public-works", "centre")
    assert fact.acknowledged_s - fact.created_s == 3600
    assert fact.resolved_s - fact.created_s == 8 * 3600
    assert fact.ack_target_s == 24 * 3600


def test_skipping_states_sets_the_skipped_times(vault: Vault, clock: Clock) -> None:
    made = vault.interactions.create(WORKS, bin_request(channel="phone"))
    clock.now += timedelta(minutes=10)
    vault.interactions.change_status(WORKS, made.id, "resolved")
    with vault.data_engine.connect() as conn:
        row = conn.execute(select(interactions)).one()
    assert row.acknowledged_s == row.in_progress_s == row.resolved_s == row.created_s + 600


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"service_code": "no-such-service"}, "unknown-service"),
        ({"attributes": {}}, "missing-attributes"),
        ({"attributes": {"bin_type": "plutonium"}}, "invalid-attribute"),
        ({"text": "x" * 4001}, "text-too-long"),
        ({"attachment": "https://files.example.org/" + "a" * 2100}, "attachment-too-long"),
        ({"kind": "rant"}, "invalid-interaction"),
        ({"location": None}, "invalid-interaction"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_nothing_is_written(
    vault: Vault, clock: Clock, changes: dict[str, object], reason: str
) -> None:
    me = citizen(vault)
    with pytest.raises(InteractionInvalid) as caught:
        vault.interactions.create(me, bin_request(**changes))
    assert caught.value.reason == reason
    with vault.data_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(interactions)) == 0
        assert conn.scalar(select(func.count()).select_from(interaction_facts)) == 0


def test_another_agency_is_refused_and_the_refusal_is_audited(vault: Vault, clock: Clock) -> None:
    made = vault.interactions.create(citizen(vault), bin_request())
    for attempt in (
        lambda: vault.interactions.get(CLINIC, made.id),
        lambda: vault.interactions.change_status(CLINIC, made.id, "acknowledged"),
    ):
        with pytest.raises(Refused) as caught:
            attempt()
        assert caught.value.reason == "other-agency"
    with vault.data_engine.connect() as conn:
        denied = conn.execute(select(audit_events).where(audit_events.c.outcome == "denied")).all()
        status = conn.scalar(select(interactions.c.status))
    assert [d.reason for d in denied] == ["other-agency", "other-agency"]
    assert status == "open"


def test_a_citizen_sees_only_their_own(vault: Vault, clock: Clock) -> None:
    me, other = citizen(vault, 1), citizen(vault, 2)
    made = vault.interactions.create(me, bin_request())
    with pytest.raises(NotFound):
        vault.interactions.get(other, made.id)
    assert vault.interactions.mine(other.subject)[1] == 0
    assert [s.id for s in vault.interactions.mine(me.subject)[0]] == [made.id]


def test_overdue_items_are_listed_per_agency(vault: Vault, clock: Clock) -> None:
    late = vault.interactions.create(WORKS, bin_request())
    done = vault.interactions.create(WORKS, bin_request())
    vault.interactions.change_status(WORKS, done.id, "acknowledged")
    clock.now += timedelta(hours=25)  # past the 24 h acknowledgement target
    assert [s.id for s in vault.interactions.overdue("public-works")[0]] == [late.id]
    assert vault.interactions.overdue("city-clinic")[1] == 0
    clock.now += timedelta(hours=48)  # past the 72 h resolution target too
    assert {s.id for s in vault.interactions.overdue("public-works")[0]} == {late.id, done.id}
    queue, total = vault.interactions.search("public-works", Search(statuses=("acknowledged",)))
    assert total == 1 and queue[0].overdue


def test_erasure_makes_texts_unreadable_and_keeps_the_facts(vault: Vault, clock: Clock) -> None:
    me = citizen(vault)
    made = vault.interactions.create(me, bin_request())
    vault.interactions.change_status(WORKS, made.id, "resolved", note="Emptied; see you at 12 Quibble Court")
    anonymous = vault.interactions.create(WORKS, bin_request(contact=Contact(email="someone@example.org")))
    vault.profiles.erase(__import__("uuid").UUID(me.subject))
    item = vault.interactions.get(WORKS, made.id)
    assert not item.readable
    assert (item.text, item.redacted_text, item.contact, item.location) == (None, None, None, None)
    assert item.history[1].note is None
    assert vault.interactions.get(WORKS, anonymous.id).contact == Contact(email="someone@example.org")
    with vault.data_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(interaction_facts)) == 2


def test_texts_and_contact_details_never_rest_in_clear(
    vault: Vault, clock: Clock, request: pytest.FixtureRequest
) -> None:
    markers = {
        "phone": "+1 212 555 0173",
        "email": "zanzibar.marker@example.org",
        "text": "Xylophonic hum from the drain",
        "address": "88 Markerton Crescent",
        "name": "Quorra Markerfield",
        "note": "Vernacular plumber note",
        "comment": "Splendiferous marker comment",
    }
    me = citizen(vault)
    text = f"{markers['text']}; call {markers['phone']} or {markers['email']}"
    made = vault.interactions.create(
        me,
        bin_request(
            text=text,
            location=Location(markers["address"], 45.0317391, 7.1042857),
            contact=Contact(markers["name"], markers["email"], markers["phone"]),
        ),
    )
    anonymous = vault.interactions.create(WORKS, bin_request(text=text, contact=Contact(markers["name"])))
    vault.interactions.change_status(WORKS, made.id, "resolved", note=markers["note"])
    vault.interactions.rate(me, made.id, 5, markers["comment"])
    assert vault.interactions.get(WORKS, anonymous.id).text == text
    stored = stored_bytes(vault, request)
    for name, value in markers.items():
        assert value.encode() not in stored, name
    # The point is sealed too; only the area code is kept. Digits distinctive enough not to occur by
    # chance in a PostgreSQL data directory (a short "45.03" did, once, in its catalogues).
    assert b"45.0317391" not in stored and b"7.1042857" not in stored
