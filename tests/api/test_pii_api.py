"""POST /v1/pii/scan and intake flagging through the API (issue #6): entities with offsets, optional
redaction, audited without the text, bad input answered with a clear 4xx (never a 500), and the
refuse and redact policies end to end on POST/PATCH /v1/citizens. Everyone here is invented.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence

import pytest

from tests.support.api_world import ODILE, World, open_world, problem
from tests.support.audit_helpers import load_events
from vault.catalogue import Catalogue, PiiRule
from vault.pii.intake import Intake
from vault.pii.model import Entity

SSN = "536-90-4399"
NOTE = f"Seen today. SSN {SSN}, call +44 20 7946 0958."


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as monkeypatch, open_world(tmp_path_factory.mktemp("pii"), monkeypatch) as w:
        yield w


def test_scan_returns_entities_with_offsets_and_redaction_and_is_audited_without_text(world: World) -> None:
    w = world
    response = w.client.post("/v1/pii/scan", json={"text": NOTE, "redact": True}, headers=w.tax)
    assert response.status_code == 200, response.text
    body = response.json()
    entities = body["entities"]
    assert [(e["type"], NOTE[e["start"] : e["end"]]) for e in entities] == [
        ("US_SSN", SSN),
        ("PHONE_NUMBER", "+44 20 7946 0958"),
    ]
    assert all(0 < e["score"] <= 1 for e in entities)
    assert body["redacted"] == "Seen today. SSN [US_SSN], call [PHONE_NUMBER]."
    plain = w.client.post("/v1/pii/scan", json={"text": NOTE}, headers=w.app("benefits-office"))
    assert plain.status_code == 200 and plain.json()["redacted"] is None
    scans = [e for e in w.events(action="pii.scan") if e["request_id"] == response.headers["x-request-id"]]
    assert len(scans) == 1 and scans[0]["reason"] == "2 entities"
    blob = json.dumps(load_events(w.vault.data_engine), default=repr)
    assert SSN not in blob and "7946" not in blob and "Seen today" not in blob


def test_who_may_scan(world: World) -> None:
    w = world
    assert w.client.post("/v1/pii/scan", json={"text": "x"}, headers=w.registrar).status_code == 200
    assert w.client.post("/v1/pii/scan", json={"text": "x"}, headers=w.compliance).status_code == 403
    cid = w.citizen({**ODILE, "national_id": "961-000-101", "email": "odile.scan@example.org"})
    assert w.client.post("/v1/pii/scan", json={"text": "x"}, headers=w.me(cid)).status_code == 403
    assert w.client.post("/v1/pii/scan", json={"text": "x"}).status_code == 401


def test_bad_input_is_a_clear_4xx_never_a_500(world: World) -> None:
    w, h = world, world.tax
    empty = w.client.post("/v1/pii/scan", json={"text": ""}, headers=h)
    assert empty.status_code == 200 and empty.json()["entities"] == []
    problem(w.client.post("/v1/pii/scan", json={"text": "a" * 100_001}, headers=h), 413)
    problem(w.client.post("/v1/pii/scan", json={"text": "a" * 1_000_000}, headers=h), 413)
    invalid_utf8 = b'{"text": "\xff\xfe broken"}'
    junk = w.client.post("/v1/pii/scan", content=invalid_utf8, headers={**h, "Content-Type": "application/json"})
    assert junk.status_code in (400, 422), junk.text
    binary = w.client.post("/v1/pii/scan", content=bytes(range(256)), headers={**h, "Content-Type": "application/json"})
    assert binary.status_code in (400, 422), binary.text
    surrogate = w.client.post(
        "/v1/pii/scan", content=b'{"text": "a \\ud800 b"}', headers={**h, "Content-Type": "application/json"}
    )
    problem(surrogate, 422)
    assert w.client.post("/v1/pii/scan", json={"text": 42}, headers=h).status_code == 422
    assert w.client.post("/v1/pii/scan", json={"text": "x", "extra": 1}, headers=h).status_code == 422
    scripts = w.client.post("/v1/pii/scan", json={"text": "電話 +44 20 7946 0958 — هاتف"}, headers=h)
    assert scripts.status_code == 200 and [e["type"] for e in scripts.json()["entities"]] == ["PHONE_NUMBER"]


def test_pathological_text_at_the_cap_is_answered(world: World) -> None:
    # How long such texts take is measured in bench/bench_pii.py, never asserted here.
    w = world
    for text in ("1 " * 10_000, "".join("0123456789 .-/@+()"[(i * 7919) % 18] for i in range(20_000))):
        response = w.client.post("/v1/pii/scan", json={"text": text}, headers=w.tax)
        assert response.status_code == 200
        assert isinstance(response.json()["entities"], list)


def test_scan_text_is_capped_at_twenty_thousand_characters(world: World) -> None:
    w = world
    problem(w.client.post("/v1/pii/scan", json={"text": "a" * 20_001}, headers=w.tax), 413)
    assert w.client.post("/v1/pii/scan", json={"text": "a" * 20_000}, headers=w.tax).status_code == 200


class _HeldScan:
    """A detector whose scans wait until released, noting the thread each ran on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.threads: list[str] = []

    def scan(self, text: str, own: Sequence[tuple[str, str]] = ()) -> list[Entity]:
        self.threads.append(threading.current_thread().name)
        self.started.release()
        self.release.wait(timeout=20)  # only a safety net: the test releases it
        return []


def test_scans_run_off_the_request_threadpool_with_a_bound_per_caller(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    held = _HeldScan()
    monkeypatch.setattr(w.vault.profiles.pii, "detector", lambda: held)
    answers: list[int] = []
    headers = w.tax
    callers = [
        threading.Thread(
            target=lambda: answers.append(
                w.client.post("/v1/pii/scan", json={"text": "x"}, headers=headers).status_code
            )
        )
        for _ in range(2)
    ]
    for t in callers:
        t.start()
    for _ in callers:
        assert held.started.acquire(timeout=20)
    try:
        third = w.client.post("/v1/pii/scan", json={"text": "x"}, headers=w.tax)
        problem(third, 429, "scans-in-flight")
        assert third.headers["retry-after"].isdigit()
    finally:
        held.release.set()
        for t in callers:
            t.join()
    assert answers == [200, 200]
    assert all(name.startswith("pii-scan") for name in held.threads), held.threads


def test_intake_refuses_a_forbidden_identifier_and_names_only_its_type(world: World) -> None:
    w = world
    fields = {**ODILE, "national_id": "961-000-102", "email": "odile.refuse@example.org", "health_notes": NOTE}
    refused = w.client.post("/v1/citizens", json={"fields": fields}, headers=w.registrar)
    doc = problem(refused, 422)
    assert "contains US_SSN; not allowed in this field" in json.dumps(doc)
    assert SSN not in json.dumps(doc)
    assert w.refusal_event(refused, outcome="failed")["reason"] == "validation-failed"
    cid = w.citizen({**fields, "health_notes": "Nothing noted."})
    patched = w.client.patch(f"/v1/citizens/{cid}", json={"fields": {"health_notes": NOTE}}, headers=w.registrar)
    assert SSN not in json.dumps(problem(patched, 422))
    findings = w.client.get(f"/v1/pii/findings/{cid}", headers=w.registrar)
    assert findings.status_code == 200, findings.text
    assert findings.json()["fields"]["health_notes"]["entities"] == {}


def test_intake_redacts_when_policy_says_and_the_findings_are_readable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    spec = w.vault.catalogue.fields["health_notes"]
    redacting = spec.model_copy(update={"pii": PiiRule(forbidden=spec.pii.forbidden, action="redact")})
    catalogue = Catalogue({**w.vault.catalogue.fields, "health_notes": redacting})
    monkeypatch.setattr(w.vault.profiles, "pii", Intake(catalogue))
    fields = {**ODILE, "national_id": "961-000-103", "email": "odile.redact@example.org", "health_notes": NOTE}
    cid = w.citizen(fields)
    read = w.client.get(f"/v1/citizens/{cid}?fields=health_notes", headers=w.registrar)
    assert read.json()["fields"]["health_notes"] == "Seen today. SSN [US_SSN], call +44 20 7946 0958."
    note = "Odile rang; her card is 4111 1111 1111 1111."
    patched = w.client.patch(f"/v1/citizens/{cid}", json={"fields": {"health_notes": note}}, headers=w.registrar)
    assert patched.status_code == 200, patched.text
    assert patched.json()["fields"]["health_notes"] == "Odile rang; her card is [CREDIT_CARD]."
    found = w.client.get(f"/v1/pii/findings/{cid}", headers=w.registrar).json()["fields"]["health_notes"]
    assert found["action"] == "redacted" and found["forbidden"] == ["CREDIT_CARD"]
    assert found["entities"]["PERSON"] == {"count": 1, "max_score": 0.85}  # her own name, no NER model
    assert "4111" not in json.dumps(found)
    assert w.client.get(f"/v1/pii/findings/{cid}", headers=w.tax).status_code == 403
