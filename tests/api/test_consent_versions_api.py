"""Consent versions over HTTP (issue 19): approving a grant request adds what the citizen approved
to the consent they hold, shown before they approve; purposes are versioned and a material change
asks the citizen again; refusals and grant statuses say what happened. All people are fictitious.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_world import ODILE, World, open_world, problem, verify

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _identity_until_tomorrow(w: World, citizen: str) -> dict[str, Any]:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    given = w.consent(citizen, **BENEFITS, categories=["identity"], expires_at=tomorrow.isoformat())
    assert given.status_code == 201, given.text
    consent: dict[str, Any] = given.json()
    return consent


def _pending_income_request(w: World, citizen: str) -> str:
    refused = w.ask(w.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["income"], max_uses=3)
    grant_id: str = problem(refused, 403, "consent-required")["grant_id"]
    return grant_id


def test_approving_a_request_keeps_the_consents_categories_and_expiry(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    held = _identity_until_tomorrow(w, odile)
    grant_id = _pending_income_request(w, odile)

    approved = w.client.post(f"/v1/me/grant-requests/{grant_id}/approve", headers=w.me(odile))
    assert approved.status_code == 200, approved.text
    [consent] = w.client.get("/v1/me/consents", headers=w.me(odile)).json()
    assert consent["id"] == held["id"] and consent["version"] == 2
    assert consent["categories"] == ["financial", "identity"]
    assert _stamp(consent["expires_at"]) == _stamp(held["expires_at"])
    history = w.receipts(odile, held["id"])
    assert [(r["version"], r["purpose_version"]) for r in history] == [(1, 1), (2, 1)]
    second = verify(history[1]["receipt"], w.jwks())
    assert second["services"][0]["purposes"][0]["piiCategory"] == ["financial", "identity"]
    assert second["purposeVersion"] == 1
    assert w.read(w.benefits, grant_id).json()["records"][0]["fields"] == {"income": 31415}


def test_the_request_shows_what_approving_makes_of_the_consent_and_the_citizen_picks_the_expiry(
    world: World,
) -> None:
    w = world
    odile = w.citizen(ODILE)
    held = _identity_until_tomorrow(w, odile)
    grant_id = _pending_income_request(w, odile)
    [request] = w.client.get("/v1/me/grant-requests", headers=w.me(odile)).json()
    assert request["id"] == grant_id
    shown = request["consent"]
    assert (shown["consent_id"], shown["held_categories"], shown["added_categories"]) == (
        held["id"],
        ["identity"],
        ["financial"],
    )
    assert shown["categories"] == ["financial", "identity"] and shown["purpose_version"] == 1
    assert _stamp(shown["expires_at"]) == _stamp(held["expires_at"])

    chosen = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    problem(
        w.client.post(f"/v1/me/grant-requests/{grant_id}/approve", json={"purpose_version": 2}, headers=w.me(odile)),
        409,
    )
    approved = w.client.post(
        f"/v1/me/grant-requests/{grant_id}/approve",
        json={"expires_at": chosen.isoformat(), "purpose_version": 1},
        headers=w.me(odile),
    )
    assert approved.status_code == 200, approved.text
    [consent] = w.client.get("/v1/me/consents", headers=w.me(odile)).json()
    assert _stamp(consent["expires_at"]) == chosen and consent["categories"] == ["financial", "identity"]


def test_giving_again_after_a_withdrawal_continues_the_same_consent(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    first = w.consent(odile, **BENEFITS).json()
    assert w.client.delete(f"/v1/me/consents/{first['id']}", headers=w.me(odile)).status_code == 200
    again = w.consent(odile, **BENEFITS, categories=["identity"])
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["version"]) == (first["id"], 3)
    assert [r["status"] for r in w.receipts(odile, first["id"])] == ["active", "withdrawn", "active"]


def test_a_material_purpose_change_asks_the_citizen_again(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    consent = w.consent(odile, **BENEFITS).json()
    grant = w.granted(w.benefits, citizen_id=odile, purpose="benefit-eligibility", fields=["income"], max_uses=3)

    changed = w.client.patch(
        "/v1/purposes/benefit-eligibility",
        json={"description": "Assess and pay housing benefits (fictitious)", "retention_days": 3650},
        headers=w.admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    problem(
        w.client.patch("/v1/purposes/benefit-eligibility", json={"lawful_basis": "public-task"}, headers=w.admin), 422
    )
    problem(w.client.patch("/v1/purposes/benefit-eligibility", json={"retention_days": 5}, headers=w.tax), 403)

    refused = w.read(w.benefits, grant["id"])
    problem(refused, 403, "consent-purpose-changed")
    assert w.refusal_event(refused)["reason"] == "consent-purpose-changed"
    shown = w.grant(w.benefits, grant["id"])
    assert (shown["status"], shown["status_reason"]) == ("suspended", "consent-purpose-changed")
    [listed] = w.client.get("/v1/me/consents", headers=w.me(odile)).json()
    assert (listed["status"], listed["purpose_version"], listed["current_purpose_version"]) == (
        "renewal-required",
        1,
        2,
    )

    renewed = w.client.post(f"/v1/me/consents/{consent['id']}/renew", headers=w.me(odile))
    assert renewed.status_code == 200, renewed.text
    assert (renewed.json()["status"], renewed.json()["version"], renewed.json()["purpose_version"]) == ("active", 2, 2)
    problem(w.client.post(f"/v1/me/consents/{consent['id']}/renew", headers=w.me(odile)), 409)
    assert w.read(w.benefits, grant["id"]).status_code == 200
    [_, latest] = w.receipts(odile, consent["id"])
    payload = verify(latest["receipt"], w.jwks())
    assert payload["purposeVersion"] == 2 and payload["retentionDays"] == 3650
    assert payload["services"][0]["purposes"][0]["purpose"] == "Assess and pay housing benefits (fictitious)"


def test_an_expired_consent_is_refused_as_expired_and_the_grant_is_reported_suspended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    odile = w.citizen(ODILE)
    soon = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    assert w.consent(odile, **BENEFITS, expires_at=soon.isoformat()).status_code == 201
    grant = w.granted(w.benefits, citizen_id=odile, purpose="benefit-eligibility", fields=["income"], max_uses=3)
    later = datetime.now(UTC) + timedelta(minutes=10)
    monkeypatch.setattr(w.vault.grants, "_clock", lambda: later)

    refused = w.read(w.benefits, grant["id"])
    problem(refused, 403, "consent-expired")
    assert w.refusal_event(refused)["reason"] == "consent-expired"
    shown = w.grant(w.benefits, grant["id"])
    assert (shown["status"], shown["status_reason"]) == ("suspended", "consent-expired")


def test_a_narrowed_consent_is_refused_as_narrowed(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    assert w.consent(odile, **BENEFITS).status_code == 201
    grant = w.granted(w.benefits, citizen_id=odile, purpose="benefit-eligibility", fields=["income"], max_uses=3)
    assert w.consent(odile, **BENEFITS, categories=["identity"]).status_code == 201
    problem(w.read(w.benefits, grant["id"]), 403, "consent-narrowed")
    shown = w.grant(w.benefits, grant["id"])
    assert (shown["status"], shown["status_reason"]) == ("suspended", "consent-narrowed")
