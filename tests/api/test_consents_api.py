"""Consents over HTTP: give, list, withdraw, every change a signed version; receipts and the
citizen's export verify with nothing but the public JWKS; citizens see only their own; and the
purposes registry's records of processing. All people and agencies are fictitious.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jose.exceptions import JOSEError
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from tests.support.api_world import BARNABY, ODILE, World, header, is_uuid, open_world, problem, tampered, verify
from vault.consent.service import consent_versions

BENEFITS = {"agency": "benefits-office", "purpose": "benefit-eligibility"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _given(w: World, citizen: str, **body: Any) -> dict[str, Any]:
    response = w.consent(citizen, **(BENEFITS | body))
    assert response.status_code == 201, response.text
    consent: dict[str, Any] = response.json()
    return consent


# -- give, list, withdraw --------------------------------------------------------------------------


def test_consent_covers_the_purposes_categories_unless_a_subset_is_named(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    everything = _given(w, odile)
    assert is_uuid(everything["id"]) and everything["citizen_id"] == odile
    assert (everything["agency"], everything["purpose"]) == ("benefits-office", "benefit-eligibility")
    assert everything["categories"] == ["contact", "financial", "identity"]
    assert (everything["status"], everything["version"], everything["expires_at"]) == ("active", 1, None)

    until = (datetime.now(UTC) + timedelta(days=90)).replace(microsecond=0)
    subset = _given(w, barnaby, categories=["identity", "financial"], expires_at=until.isoformat())
    assert subset["categories"] == ["financial", "identity"] and subset["expires_at"]
    assert datetime.fromisoformat(subset["expires_at"].replace("Z", "+00:00")) == until

    listed = w.client.get("/v1/me/consents", headers=w.me(odile))
    assert listed.status_code == 200 and listed.json() == [everything]
    # The agency sees consents given to it; a compliance officer of the vault sees any agency's.
    agency_view = w.client.get("/v1/consents", headers=w.benefits).json()
    assert {c["id"] for c in agency_view} == {everything["id"], subset["id"]}
    assert w.client.get("/v1/consents", headers=w.tax).json() == []
    assert len(w.client.get("/v1/consents", headers=w.compliance).json()) == 2
    # Giving is audited, naming the purpose and never the data.
    events = w.events(citizen_id=odile, action="consents.give")
    assert [(e["purpose"], e["reason"], e["outcome"]) for e in events] == [
        ("benefit-eligibility", "benefits-office v1 (purpose v1)", "allowed")
    ]


def test_invalid_consents_are_422(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[dict[str, Any]] = [
        BENEFITS | {"categories": ["identity", "health"]},  # outside the purpose
        {"agency": "tax-office", "purpose": "tax-assessment"},  # rests on a legal obligation
        {"agency": "city-clinic", "purpose": "emergency-care"},  # vital interest
        BENEFITS | {"expires_at": past},
        BENEFITS | {"expires_at": "2031-01-01T00:00:00"},  # no time zone
        BENEFITS | {"categories": []},
        {"agency": "tax-office", "purpose": "benefit-eligibility"},  # not an agency of the purpose
        BENEFITS | {"scope": "everything"},
    ]
    for body in cases:
        problem(w.consent(odile, **body), 422)
    problem(w.consent(odile, agency="benefits-office", purpose="fishing-licence"), 404)
    assert w.client.get("/v1/me/consents", headers=w.me(odile)).json() == []


def test_withdrawing_is_a_new_version_and_a_second_withdrawal_conflicts(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    consent = _given(w, odile)
    withdrawn = w.client.delete(f"/v1/me/consents/{consent['id']}", headers=w.me(odile))
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["version"]) == ("withdrawn", 2)
    assert w.client.get("/v1/me/consents", headers=w.me(odile)).json() == [withdrawn.json()]

    again = w.client.delete(f"/v1/me/consents/{consent['id']}", headers=w.me(odile))
    problem(again, 409)
    history = w.receipts(odile, consent["id"])
    assert [(r["version"], r["status"]) for r in history] == [(1, "active"), (2, "withdrawn")]

    # Consenting again afterwards continues the same consent: one chain of versions per agency and
    # purpose, the withdrawal kept in it (issue 19).
    renewed = _given(w, odile)
    assert renewed["id"] == consent["id"] and renewed["version"] == 3
    assert [r["status"] for r in w.receipts(odile, consent["id"])] == ["active", "withdrawn", "active"]


def test_giving_again_while_active_is_a_new_version_of_the_same_consent(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    first = _given(w, odile)
    second = _given(w, odile, categories=["identity"])
    assert second["id"] == first["id"]
    assert (second["version"], second["categories"], second["status"]) == (2, ["identity"], "active")
    history = w.receipts(odile, first["id"])
    assert [(r["version"], r["status"]) for r in history] == [(1, "active"), (2, "active")]
    assert len(w.client.get("/v1/me/consents", headers=w.me(odile)).json()) == 1
    # The narrower consent no longer covers a request for contact data.
    problem(
        w.ask(w.benefits, citizen_id=odile, purpose="benefit-eligibility", fields=["email"]), 403, "consent-required"
    )
    w.granted(w.benefits, citizen_id=odile, purpose="benefit-eligibility", fields=["given_name"])


def test_consent_history_cannot_be_rewritten_through_the_database(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    consent = _given(w, odile)
    assert w.client.delete(f"/v1/me/consents/{consent['id']}", headers=w.me(odile)).status_code == 200
    before = w.receipts(odile, consent["id"])
    rows = consent_versions.c
    for statement in (
        update(consent_versions).where(rows.consent_id == consent["id"]).values(status="active"),
        update(consent_versions).where(rows.consent_id == consent["id"], rows.version == 1).values(receipt="x"),
        delete(consent_versions).where(rows.consent_id == consent["id"], rows.version == 2),
        delete(consent_versions),
    ):
        with pytest.raises(DBAPIError, match="append-only"), w.vault.data_engine.begin() as conn:
            conn.execute(statement)
    assert w.receipts(odile, consent["id"]) == before


# -- signatures ------------------------------------------------------------------------------------


def test_receipts_are_kantara_receipts_that_verify_with_the_public_jwks_alone(world: World) -> None:
    w = world
    odile = w.citizen(ODILE)
    consent = _given(w, odile)
    assert w.client.delete(f"/v1/me/consents/{consent['id']}", headers=w.me(odile)).status_code == 200
    jwks = w.jwks()
    assert jwks and all("d" not in k for k in jwks.values()), "the JWKS publishes a private key"

    given, withdrawn = w.receipts(odile, consent["id"])
    assert {header(r["receipt"])["typ"] for r in (given, withdrawn)} == {"consent-receipt+jwt"}
    payloads = [verify(r["receipt"], jwks) for r in (given, withdrawn)]
    for version, payload in enumerate(payloads, start=1):
        for name in ("version", "jurisdiction", "consentTimestamp", "collectionMethod", "language", "policyUrl"):
            assert payload[name], name
        assert payload["consentReceiptID"] == f"{consent['id']}/v{version}"
        assert payload["piiPrincipalId"] == odile
        assert payload["piiControllers"] == [{"piiController": "benefits-office", "onBehalf": False}]
        [service] = payload["services"]
        assert service["service"] == "benefit-eligibility"
        [purpose] = service["purposes"]
        assert purpose["piiCategory"] == ["contact", "financial", "identity"]
        assert purpose["consentType"] == "EXPLICIT" and purpose["termination"] == "until withdrawn"
        assert payload["sensitive"] is False and payload["lawfulBasis"] == "consent"
        assert (payload["consentId"], payload["consentVersion"]) == (consent["id"], version)
    assert [p["consentStatus"] for p in payloads] == ["ACTIVE", "WITHDRAWN"]

    forged = tampered(withdrawn["receipt"], {"consentStatus": "ACTIVE"})
    with pytest.raises(JOSEError):
        verify(forged, jwks)


def test_a_health_consent_receipt_is_marked_sensitive(world: World) -> None:
    w = world
    created = w.client.post(
        "/v1/purposes",
        json={
            "code": "wellbeing-survey",
            "description": "A voluntary wellbeing survey (fictitious)",
            "categories": ["identity", "health"],
            "lawful_basis": "consent",
            "retention_days": 365,
            "agencies": ["city-clinic"],
        },
        headers=w.admin,
    )
    assert created.status_code == 201, created.text
    odile = w.citizen(ODILE)
    consent = _given(w, odile, agency="city-clinic", purpose="wellbeing-survey")
    [receipt] = w.receipts(odile, consent["id"])
    payload = verify(receipt["receipt"], w.jwks())
    assert payload["sensitive"] is True and payload["spiCat"] == ["health"]


# -- the citizen's export, and isolation between citizens ------------------------------------------


def test_the_export_is_a_signed_bundle_of_everything_held_on_the_citizen(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    consent = _given(w, odile)
    grant = w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"])
    assert w.read(w.tax, grant["id"]).status_code == 200
    w.granted(w.tax, citizen_id=barnaby, purpose="tax-assessment", fields=["income"])

    response = w.client.get("/v1/me/export", headers=w.me(odile))
    assert response.status_code == 200, response.text
    bundle, token = response.json()["bundle"], response.json()["jws"]
    assert verify(token, w.jwks()) == bundle
    assert header(token)["typ"] == "citizen-export+jwt"
    forged = tampered(token, {"citizen_id": barnaby})
    with pytest.raises(JOSEError):
        verify(forged, w.jwks())

    assert bundle["citizen_id"] == odile
    assert bundle["profile"]["fields"] == ODILE
    assert bundle["profile"]["provenance"]["income"]["source_agency"] == "civil-registry"
    [exported] = bundle["consents"]
    assert exported["id"] == consent["id"] and [v["version"] for v in exported["versions"]] == [1]
    assert verify(exported["versions"][0]["receipt"], w.jwks())["piiPrincipalId"] == odile
    assert [g["id"] for g in bundle["grants"]] == [grant["id"]], "another citizen's grant is in the export"
    assert bundle["grants"][0]["uses"] == 1 and verify(bundle["grants"][0]["jws"], w.jwks())["jti"] == grant["id"]
    read = [e for e in bundle["access_log"] if e["action"] == "grants.read"]
    assert [(e["who"], e["basis"]) for e in read] == [("caseworker@tax-office", f"access grant {grant['id']}")]
    assert "Barnaby" not in response.text and BARNABY["national_id"] not in response.text


def test_a_citizen_cannot_see_or_act_on_another_citizens_consents_or_requests(world: World) -> None:
    w = world
    odile, barnaby = w.citizen(ODILE), w.citizen(BARNABY)
    consent = _given(w, odile)
    pending = w.ask(w.benefits, citizen_id=barnaby, purpose="benefit-eligibility", fields=["email"])
    request_id = problem(pending, 403, "consent-required")["grant_id"]

    assert w.client.get("/v1/me/consents", headers=w.me(barnaby)).json() == []
    assert w.client.get("/v1/me/grant-requests", headers=w.me(odile)).json() == []
    problem(w.client.delete(f"/v1/me/consents/{consent['id']}", headers=w.me(barnaby)), 404)
    problem(w.client.get(f"/v1/me/consents/{consent['id']}/receipts", headers=w.me(barnaby)), 404)
    problem(w.client.post(f"/v1/me/grant-requests/{request_id}/approve", headers=w.me(odile)), 404)
    # Nothing changed: hers is still active, his request still waits for him.
    assert w.client.get("/v1/me/consents", headers=w.me(odile)).json()[0]["status"] == "active"
    assert [g["id"] for g in w.client.get("/v1/me/grant-requests", headers=w.me(barnaby)).json()] == [request_id]
    # Officers do not use the citizen's own routes.
    problem(w.client.get("/v1/me/consents", headers=w.benefits), 403)
    problem(w.client.post(f"/v1/me/grant-requests/{request_id}/approve", headers=w.benefits), 403)


# -- purposes and records of processing ------------------------------------------------------------


def test_a_compliance_officer_reads_the_records_of_processing_and_a_caseworker_cannot(world: World) -> None:
    w = world
    response = w.client.get("/v1/records-of-processing", headers=w.compliance)
    assert response.status_code == 200, response.text
    records = {r["purpose"]: r for r in response.json()["records"]}
    assert set(records) == {"tax-assessment", "benefit-eligibility", "emergency-care"}
    expected = {
        "tax-assessment": (["financial", "identity"], ["tax-office"], "legal-obligation", 3650),
        "benefit-eligibility": (["contact", "financial", "identity"], ["benefits-office"], "consent", 730),
        "emergency-care": (["health", "identity"], ["city-clinic"], "vital-interest", 3650),
    }
    for code, (categories, recipients, basis, retention) in expected.items():
        r = records[code]
        assert (r["data_categories"], r["recipients"], r["lawful_basis"], r["retention_days"]) == (
            categories,
            recipients,
            basis,
            retention,
        )
        assert r["status"] == "active" and r["description"]
        assert (r["statute"] is None) == (basis == "consent")
    assert w.client.get("/v1/records-of-processing", headers=w.admin).status_code == 200
    for headers in (w.tax, w.app("tax-office"), w.me(w.citizen(ODILE))):
        problem(w.client.get("/v1/records-of-processing", headers=headers), 403)


def test_an_admin_registers_purposes_with_a_statute_for_non_consent_bases_and_unique_codes(world: World) -> None:
    w = world
    body: dict[str, Any] = {
        "code": "parking-permits",
        "description": "Issue residents' parking permits (fictitious)",
        "categories": ["identity", "contact"],
        "lawful_basis": "public-task",
        "retention_days": 365,
        "agencies": ["civil-registry"],
    }
    problem(w.client.post("/v1/purposes", json=body, headers=w.admin), 422)
    problem(w.client.post("/v1/purposes", json=body | {"statute": "   "}, headers=w.admin), 422)
    problem(w.client.post("/v1/purposes", json=body | {"categories": ["shoe-sizes"]}, headers=w.admin), 422)
    with_statute = body | {"statute": "Parking Act (fictitious) s. 3"}
    problem(w.client.post("/v1/purposes", json=with_statute, headers=w.tax), 403)
    created = w.client.post("/v1/purposes", json=with_statute, headers=w.admin)
    assert created.status_code == 201, created.text
    assert created.json()["categories"] == ["contact", "identity"] and created.json()["status"] == "active"
    problem(w.client.post("/v1/purposes", json=with_statute, headers=w.admin), 409)
    problem(w.client.post("/v1/purposes", json=with_statute | {"code": "tax-assessment"}, headers=w.admin), 409)
    listed = w.client.get("/v1/purposes", headers=w.me(w.citizen(ODILE)))
    assert listed.status_code == 200
    assert {p["code"] for p in listed.json()} == {
        "tax-assessment",
        "benefit-eligibility",
        "emergency-care",
        "parking-permits",
    }
    assert [e["purpose"] for e in w.events(action="purposes.create", actor="admin@vault")] == ["parking-permits"]
