"""The audit log over HTTP: what is recorded (names, never values), refusals audited, compliance
review (filters, paging, agency scope, read-only), integrity check, fail closed, reports and flags.

All data is fictitious.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from vault.demo_registry import seed_registry
from vault.models import citizens
from vault.runtime import Vault, init_vault

Env = tuple[TestClient, Vault, AppSettings]
Headers = dict[str, str]
PROBLEM = "application/problem+json"

# One invented citizen with values distinctive enough to grep for.
ZEBULON = {
    "given_name": "Zebulon",
    "family_name": "Fizzlewick",
    "date_of_birth": "1969-06-09",
    "national_id": "912-345-678",
    "email": "zebulon.fizzlewick@example.org",
    "phone": "+999 555 4242",
    "address": "7 Snickerdoodle Close, Nowhereville",
    "income": 27182,
    "health_notes": "Sneezes at imaginary cats.",
}
MARKERS = ["Zebulon", "Fizzlewick", "912-345-678", "zebulon.fizzlewick", "+999 555 4242", "Snickerdoodle", "imaginary"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name in list(os.environ):
        if name.startswith("CITIZEN_VAULT_"):
            monkeypatch.delenv(name)
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10, audit_checkpoint_every=10)
    vault = init_vault(settings)
    seed_registry(vault.registry)
    vault.registry.assign("compliance@tax-office", "tax-office", "compliance-officer")
    with TestClient(create_app(settings, vault)) as client:
        yield client, vault, settings
    vault.close()


def _token(vault: Vault, settings: AppSettings, subject: str, role: str, agency: str | None) -> Headers:
    tok = issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 600)
    return {"Authorization": f"Bearer {tok}"}


def _registrar(vault: Vault, settings: AppSettings) -> Headers:
    return _token(vault, settings, "registrar@civil-registry", "registrar", "civil-registry")


def _caseworker(vault: Vault, settings: AppSettings) -> Headers:
    return _token(vault, settings, "caseworker@benefits-office", "caseworker", "benefits-office")


def _compliance(vault: Vault, settings: AppSettings) -> Headers:
    return _token(vault, settings, "compliance@vault", "compliance-officer", "vault")


def _events(client: TestClient, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/audit/events", params={"limit": 1000, **params}, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _by_request(events: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    found = [e for e in events if e["request_id"] == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def _create(client: TestClient, headers: Headers, fields: dict[str, Any]) -> str:
    created = client.post("/v1/citizens", json={"fields": fields}, headers=headers)
    assert created.status_code == 201, created.text
    cid: str = created.json()["id"]
    return cid


def _citizen_count(vault: Vault) -> int:
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(citizens)) or 0)


# -- what is recorded -----------------------------------------------------------------------


def test_a_registrars_read_records_who_which_citizen_and_field_names_but_never_a_value(env: Env) -> None:
    client, vault, settings = env
    registrar, compliance = _registrar(vault, settings), _compliance(vault, settings)
    cid = _create(client, registrar, ZEBULON)

    partial = client.get(f"/v1/citizens/{cid}?fields=national_id,given_name,family_name", headers=registrar)
    full = client.get(f"/v1/citizens/{cid}", headers=registrar)
    assert partial.status_code == full.status_code == 200
    assert full.json()["fields"]["given_name"] == "Zebulon"

    raw = client.get("/v1/audit/events", params={"citizen_id": cid, "limit": 1000}, headers=compliance)
    assert raw.status_code == 200
    reads = [e for e in raw.json()["events"] if e["action"] == "citizens.read"]
    assert len(reads) == 2
    first = _by_request(reads, partial.headers["x-request-id"])
    assert first["actor"] == "registrar@civil-registry"
    assert first["role"] == "registrar" and first["agency"] == "civil-registry"
    assert first["citizen_id"] == cid and first["outcome"] == "allowed"
    assert first["fields"] == ["family_name", "given_name", "national_id"]
    second = _by_request(reads, full.headers["x-request-id"])
    assert second["fields"] == sorted(ZEBULON)
    created = [e for e in raw.json()["events"] if e["action"] == "citizens.create"]
    assert len(created) == 1 and created[0]["fields"] == sorted(ZEBULON)

    # Searches, a duplicate and an invalid value leave events naming fields, not the values given.
    found = client.get("/v1/citizens?national_id=912-345-678", headers=registrar)
    assert found.status_code == 200 and found.json()["ids"] == [cid]
    assert client.get("/v1/citizens?email=zebulon.fizzlewick@example.org", headers=registrar).status_code == 200
    duplicate = client.post("/v1/citizens", json={"fields": ZEBULON}, headers=registrar)
    assert duplicate.status_code == 409
    invalid = {"given_name": "Zebulon", "family_name": "Fizzlewick", "email": "Snickerdoodle at nowhere"}
    assert client.post("/v1/citizens", json={"fields": invalid}, headers=registrar).status_code == 422
    everything = client.get("/v1/audit/events", params={"limit": 1000}, headers=compliance)
    lookups = [e for e in everything.json()["events"] if e["action"] == "citizens.lookup"]
    assert sorted(e["fields"][0] for e in lookups) == ["email", "national_id"]
    failed = [e for e in everything.json()["events"] if e["outcome"] == "failed"]
    assert {(e["action"], e["reason"]) for e in failed} == {
        ("citizens.create", "conflict"),
        ("citizens.create", "validation-failed"),
    }
    for marker in MARKERS:
        assert marker not in raw.text and marker not in everything.text, f"audit events contain the value {marker!r}"
    for event in everything.json()["events"]:
        assert ZEBULON["income"] not in event.values() and str(ZEBULON["income"]) not in event.values()


def test_refused_requests_are_audited_as_denied_with_the_reason(env: Env) -> None:
    client, vault, settings = env
    cid = _create(client, _registrar(vault, settings), ZEBULON)

    refused = client.get(f"/v1/citizens/{cid}", headers=_caseworker(vault, settings))
    assert refused.status_code == 403
    reason = refused.json()["reason"]
    assert reason == "policy"  # a short code; the sentence is in detail

    # A forged token: a compliance officer's claims under the signature of another token.
    real = _registrar(vault, settings)["Authorization"].removeprefix("Bearer ")
    claimed = _compliance(vault, settings)["Authorization"].removeprefix("Bearer ")
    forged = ".".join([*claimed.split(".")[:2], real.split(".")[2]])
    anonymous = client.get(f"/v1/citizens/{cid}", headers={"Authorization": f"Bearer {forged}"})
    assert anonymous.status_code == 401

    denied = _events(client, _compliance(vault, settings), outcome="denied")
    event = _by_request(denied, refused.headers["x-request-id"])
    assert event["actor"] == "caseworker@benefits-office"
    assert (event["role"], event["agency"]) == ("caseworker", "benefits-office")
    assert (event["action"], event["citizen_id"], event["reason"]) == ("citizens.read", cid, reason)
    event = _by_request(denied, anonymous.headers["x-request-id"])
    assert (event["actor"], event["role"], event["agency"]) == ("anonymous", "-", "-")
    assert event["action"] == "citizens.read" and event["citizen_id"] == cid
    assert event["reason"] == anonymous.json()["reason"] and event["reason"]


def test_a_refusal_never_records_caller_text_from_the_path_as_a_citizen_id(env: Env) -> None:
    client, vault, settings = env
    caseworker, compliance = _caseworker(vault, settings), _compliance(vault, settings)
    refused = client.get("/v1/citizens/Zebulon%20Fizzlewick%20912-345-678", headers=caseworker)
    assert refused.status_code == 403
    event = _by_request(_events(client, compliance, outcome="denied"), refused.headers["x-request-id"])
    assert event["citizen_id"] is None
    everything = client.get("/v1/audit/events", params={"limit": 1000}, headers=compliance)
    assert "Zebulon" not in everything.text and "912-345-678" not in everything.text


# -- compliance review ----------------------------------------------------------------------


def _activity(client: TestClient, vault: Vault, settings: AppSettings) -> list[str]:
    """Three citizens, reads by the civil registry, look-ups by the tax office, one refusal."""
    registrar = _registrar(vault, settings)
    people = [{"given_name": f"Orvil{i}", "family_name": "Testworth", "national_id": f"955-000-00{i}"} for i in "012"]
    ids = [_create(client, registrar, fields) for fields in people]
    for cid in ids:
        assert client.get(f"/v1/citizens/{cid}?fields=given_name", headers=registrar).status_code == 200
    tax = _token(vault, settings, "registrar@tax-office", "registrar", "tax-office")
    for i in range(3):
        assert client.get(f"/v1/citizens?national_id=955-000-00{i}", headers=tax).status_code == 200
    assert client.get(f"/v1/citizens/{ids[0]}", headers=tax).status_code == 403
    return ids


def test_a_vault_compliance_officer_filters_events(env: Env) -> None:
    client, vault, settings = env
    ids = _activity(client, vault, settings)
    compliance = _compliance(vault, settings)

    about = _events(client, compliance, citizen_id=ids[0])
    assert {e["citizen_id"] for e in about} == {ids[0]}
    assert {e["action"] for e in about} >= {"citizens.create", "citizens.read", "citizens.lookup"}
    reads = _events(client, compliance, action="citizens.read")
    assert {e["action"] for e in reads} == {"citizens.read"} and len(reads) == 4
    denied = _events(client, compliance, outcome="denied")
    assert len(denied) == 1 and denied[0]["actor"] == "registrar@tax-office"
    both = _events(client, compliance, action="citizens.read", outcome="allowed", agency="civil-registry")
    assert [e["citizen_id"] for e in both] == ids

    everything = _events(client, compliance)
    stamps = sorted({e["ts"] for e in everything})
    assert len(stamps) >= 3
    since, until = stamps[1], stamps[-2]
    window = _events(client, compliance, since=since, until=until)
    expected = [e["seq"] for e in everything if since <= e["ts"] < until]
    assert expected and [e["seq"] for e in window] == expected
    backwards = client.get("/v1/audit/events", params={"since": until, "until": since}, headers=compliance)
    assert backwards.status_code == 422
    naive = client.get("/v1/audit/events", params={"since": "2026-01-01T00:00:00"}, headers=compliance)
    assert naive.status_code == 422 and naive.headers["content-type"].startswith(PROBLEM)


def test_paging_with_after_and_next_after_has_no_duplicates_and_no_gaps(env: Env) -> None:
    client, vault, settings = env
    _activity(client, vault, settings)
    compliance = _compliance(vault, settings)
    # The reviews themselves are audited (agency vault), so page over the civil registry's events.
    whole = [e["seq"] for e in _events(client, compliance, agency="civil-registry")]
    assert len(whole) >= 6
    seen: list[int] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        response = client.get(
            "/v1/audit/events", params={"agency": "civil-registry", "after": after, "limit": 4}, headers=compliance
        )
        assert response.status_code == 200
        page = response.json()
        assert len(page["events"]) <= 4
        seen += [e["seq"] for e in page["events"]]
        after = page["next_after"]
        if after is not None:
            assert after == page["events"][-1]["seq"]
        pages += 1
        assert pages < 50
    assert seen == whole, "paging lost or repeated events"
    assert len(set(seen)) == len(seen)
    assert pages == -(-len(whole) // 4) or pages == -(-len(whole) // 4) + 1


def test_an_agency_compliance_officer_sees_only_their_agencys_events(env: Env) -> None:
    client, vault, settings = env
    _activity(client, vault, settings)
    officer = _token(vault, settings, "compliance@tax-office", "compliance-officer", "tax-office")

    own = _events(client, officer)
    assert own and {e["agency"] for e in own} == {"tax-office"}
    again = _events(client, officer, agency="tax-office")
    assert again[: len(own)] == own and [e["action"] for e in again[len(own) :]] == ["audit.read"]
    other = client.get("/v1/audit/events", params={"agency": "civil-registry"}, headers=officer)
    assert other.status_code == 403
    assert other.json()["reason"].startswith("own-agency-only")
    report = client.get("/v1/audit/report", headers=officer)
    assert report.status_code == 200 and {r["agency"] for r in report.json()} == {"tax-office"}
    assert client.get("/v1/audit/report", params={"agency": "vault"}, headers=officer).status_code == 403


AUDIT_PATHS = [
    "/v1/audit/events",
    "/v1/audit/verify",
    "/v1/audit/report",
    "/v1/audit/flags",
    "/v1/audit/deferrals",
    "/v1/me/access-log",
]


def test_a_compliance_officer_cannot_change_anything(env: Env) -> None:
    client, vault, settings = env
    ids = _activity(client, vault, settings)
    compliance = _compliance(vault, settings)
    before = _events(client, compliance)
    people = _citizen_count(vault)

    for path in AUDIT_PATHS:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, path, headers=compliance, json={"events": [1]})
            assert response.status_code in (403, 405), (method, path, response.status_code)
    writes = [
        ("POST", "/v1/citizens", {"fields": {"given_name": "Mallory", "family_name": "Testworth"}}),
        ("PATCH", f"/v1/citizens/{ids[0]}", {"fields": {"given_name": "Mallory"}}),
        ("DELETE", f"/v1/citizens/{ids[0]}", None),
        ("POST", "/v1/agencies", {"code": "shadow-office", "name": "Shadow Office"}),
        ("PATCH", "/v1/agencies/tax-office", {"status": "suspended"}),
        ("POST", "/v1/clients", {"agency": "vault", "name": "mine"}),
        ("DELETE", "/v1/clients/some-client", None),
        ("POST", "/v1/role-assignments", {"subject": "x@vault", "agency": "vault", "role": "admin"}),
        ("DELETE", "/v1/role-assignments", {"subject": "x@vault", "agency": "vault", "role": "admin"}),
    ]
    for method, path, body in writes:
        response = client.request(method, path, headers=compliance, json=body)
        assert response.status_code == 403, (method, path, response.status_code)

    assert _citizen_count(vault) == people
    after = _events(client, compliance)
    assert after[: len(before)] == before, "existing audit events changed"
    refused = [e for e in after[len(before) :] if e["outcome"] == "denied"]
    assert len(refused) >= len(writes) and {e["actor"] for e in refused} == {"compliance@vault"}
    verified = client.get("/v1/audit/verify", headers=compliance).json()
    assert verified["ok"] is True


@pytest.mark.parametrize(
    ("subject", "role", "agency"),
    [
        ("caseworker@benefits-office", "caseworker", "benefits-office"),
        ("registrar@civil-registry", "registrar", "civil-registry"),
        ("admin@vault", "admin", "vault"),
    ],
)
def test_officers_other_than_compliance_cannot_read_the_log(env: Env, subject: str, role: str, agency: str) -> None:
    client, vault, settings = env
    headers = _token(vault, settings, subject, role, agency)
    for path in ("/v1/audit/events", "/v1/audit/verify", "/v1/audit/report", "/v1/audit/flags"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.status_code)
        assert response.headers["content-type"].startswith(PROBLEM)
    denied = _events(client, _compliance(vault, settings), actor=subject, outcome="denied")
    assert len(denied) == 4 and {e["action"] for e in denied} == {"audit.read"}


def test_a_citizen_cannot_read_the_log(env: Env) -> None:
    client, vault, settings = env
    cid = vault.profiles.create({"given_name": "Pella", "family_name": "Testworth"}, "civil-registry")
    me = _token(vault, settings, str(cid), "citizen", None)
    assert client.get("/v1/audit/events", headers=me).status_code == 403
    assert client.get("/v1/audit/events", params={"citizen_id": str(cid)}, headers=me).status_code == 403


# -- integrity --------------------------------------------------------------------------------


def test_verify_reports_intact_then_names_an_edited_event(env: Env) -> None:
    client, vault, settings = env
    _activity(client, vault, settings)
    compliance = _compliance(vault, settings)

    intact = client.get("/v1/audit/verify", headers=compliance)
    assert intact.status_code == 200
    body = intact.json()
    assert body["ok"] is True and body["finding"] is None
    assert body["events"] == body["head_count"] >= 10 and body["checkpoints"] >= 1
    assert body["public_keys"] and all(isinstance(k, str) for k in body["public_keys"].values())
    assert body["latest_checkpoint"]["kid"] in body["public_keys"]
    assert body["latest_checkpoint"]["count"] <= body["events"]

    with vault.data_engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
    broken = client.get("/v1/audit/verify", headers=compliance)
    assert broken.status_code == 200
    result = broken.json()
    assert result["ok"] is False
    assert result["finding"]["kind"] == "edited" and result["finding"]["seq"] == 3


def test_no_audit_no_data_over_http(env: Env) -> None:
    client, vault, settings = env
    registrar = _registrar(vault, settings)
    cid = _create(client, registrar, ZEBULON)
    people = _citizen_count(vault)
    with vault.data_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit offline'); END"
        )

    read = client.get(f"/v1/citizens/{cid}", headers=registrar)
    assert read.status_code == 503
    assert read.headers["content-type"].startswith(PROBLEM)
    assert read.json()["type"].endswith("/audit-unavailable")
    for marker in MARKERS:
        assert marker not in read.text
    other = {"given_name": "Ottoline", "family_name": "Quibbleton", "national_id": "912-000-111"}
    created = client.post("/v1/citizens", json={"fields": other}, headers=registrar)
    assert created.status_code == 503 and created.json()["type"].endswith("/audit-unavailable")
    assert "Quibbleton" not in created.text
    assert _citizen_count(vault) == people, "a citizen was stored although its audit event was not"
    me = client.get("/v1/me", headers=_token(vault, settings, cid, "citizen", None))
    assert me.status_code == 503 and "Zebulon" not in me.text
    # Refusals still refuse (they return no data whether or not their event could be written).
    assert client.get(f"/v1/citizens/{cid}", headers=_caseworker(vault, settings)).status_code == 403
    assert client.get(f"/v1/citizens/{cid}", headers={"Authorization": "Bearer not.a.token"}).status_code == 401

    with vault.data_engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER block_audit")
    assert client.get(f"/v1/citizens/{cid}", headers=registrar).status_code == 200
    assert client.get("/v1/citizens?national_id=912-000-111", headers=registrar).json()["ids"] == []


# -- reports and flags ------------------------------------------------------------------------


def test_flags_name_volume_and_denial_burst_and_the_report_counts_by_group(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, vault, settings = env
    ids = [
        str(vault.profiles.create({"given_name": f"Vole{i}", "family_name": "Testworth"}, "civil-registry"))
        for i in range(30)
    ]
    # Every event below in one hour of one day, so the per-day and per-hour rules see them together.
    frozen = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=2)
    monkeypatch.setattr(vault.audit, "_clock", lambda: frozen)
    busy = _registrar(vault, settings)
    for cid in ids:
        assert client.get(f"/v1/citizens/{cid}?fields=given_name", headers=busy).status_code == 200
    for n in range(3):
        subject = f"registrar{n}@civil-registry"
        vault.registry.assign(subject, "civil-registry", "registrar")
        calm = _token(vault, settings, subject, "registrar", "civil-registry")
        for cid in ids[:2]:
            assert client.get(f"/v1/citizens/{cid}?fields=given_name", headers=calm).status_code == 200
    nosy = _caseworker(vault, settings)
    for _ in range(10):
        assert client.get(f"/v1/citizens/{ids[0]}", headers=nosy).status_code == 403

    compliance = _compliance(vault, settings)
    flags = client.get("/v1/audit/flags", headers=compliance)
    assert flags.status_code == 200
    volume = [f for f in flags.json() if f["rule"] == "volume"]
    assert [(f["actor"], f["agency"], f["observed"]) for f in volume] == [
        ("registrar@civil-registry", "civil-registry", 30)
    ], "only the registrar who read 30 citizens (usual: 2 per actor-day) is flagged"
    assert volume[0]["threshold"] == 20 and volume[0]["period"] == frozen.strftime("%Y-%m-%d")
    bursts = [f for f in flags.json() if f["rule"] == "denial-burst"]
    assert [(f["actor"], f["observed"]) for f in bursts] == [("caseworker@benefits-office", 10)]
    assert bursts[0]["period"] == frozen.strftime("%Y-%m-%dT%H:00")

    own = _token(vault, settings, "compliance@tax-office", "compliance-officer", "tax-office")
    assert client.get("/v1/audit/flags", headers=own).json() == []

    report = client.get("/v1/audit/report", headers=compliance)
    assert report.status_code == 200
    rows = {(r["agency"], r["purpose"], r["action"], r["outcome"]): r for r in report.json()}
    assert len(rows) == len(report.json()), "the report repeats a group"
    reads = rows[("civil-registry", None, "citizens.read", "allowed")]
    assert (reads["events"], reads["citizens"]) == (36, 30)
    refusals = rows[("benefits-office", None, "citizens.read", "denied")]
    assert (refusals["events"], refusals["citizens"]) == (10, 1)
    scoped = client.get("/v1/audit/report", params={"agency": "civil-registry"}, headers=compliance).json()
    assert {r["agency"] for r in scoped} == {"civil-registry"}
    assert sum(r["events"] for r in scoped) == len(_events(client, compliance, agency="civil-registry"))


def test_a_request_id_is_unique_per_request(env: Env) -> None:
    client, vault, settings = env
    registrar = _registrar(vault, settings)
    cid = _create(client, registrar, {"given_name": "Rufus", "family_name": "Testworth"})
    seen = {client.get(f"/v1/citizens/{cid}", headers=registrar).headers["x-request-id"] for _ in range(3)}
    assert len(seen) == 3
    events = _events(client, _compliance(vault, settings), action="citizens.read")
    assert {e["request_id"] for e in events} == seen
    assert all(uuid.UUID(hex=r) for r in seen)
