"""Intake screening of free-text fields (issue #6) through ProfileService: refuse, redact and accept
as the field's policy says; the findings stored are types, counts and scores, never values or offsets;
the citizen's own values are recognised in their note. Every person and identifier here is invented.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from vault.catalogue import Catalogue, PiiRule
from vault.errors import ValidationFailed
from vault.pii.intake import Intake, read_findings
from vault.pii.tables import pii_findings
from vault.profiles.service import ProfileService
from vault.runtime import Vault, init_vault
from vault.settings import Settings

SSN = "536-90-4399"
PERSON = {
    "given_name": "Zebulon",
    "family_name": "Quibblewick",
    "national_id": "961-000-777",
    "date_of_birth": "1969-04-01",
    "address": "7 Treacle Mews, Nowhereville",
}


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    yield v
    v.close()


def with_action(catalogue: Catalogue, action: str) -> Catalogue:
    """The catalogue with health_notes' PII action changed."""
    spec = catalogue.fields["health_notes"]
    rule = PiiRule(forbidden=spec.pii.forbidden, action=action)
    return Catalogue({**catalogue.fields, "health_notes": spec.model_copy(update={"pii": rule})})


def service(vault: Vault, action: str) -> ProfileService:
    return ProfileService(vault.data_engine, vault.dekstore, with_action(vault.catalogue, action), vault.audit)


def stored_rows(vault: Vault) -> list[dict[str, Any]]:
    with vault.data_engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(pii_findings))]


def test_the_shipped_policy_refuses_a_national_id_in_health_notes_naming_only_the_type(vault: Vault) -> None:
    assert vault.catalogue.fields["health_notes"].pii.action == "refuse"
    with pytest.raises(ValidationFailed) as caught:
        vault.profiles.create({**PERSON, "health_notes": f"Patient SSN {SSN}, mild cough"}, "civil-registry")
    assert caught.value.problems == {"health_notes": "contains US_SSN; not allowed in this field"}
    assert SSN not in str(caught.value)
    assert stored_rows(vault) == []
    with vault.data_engine.connect() as conn:
        assert conn.execute(select(pii_findings)).first() is None


def test_redact_stores_the_redacted_text_and_findings_without_values(vault: Vault) -> None:
    profiles = service(vault, "redact")
    note = f"Zebulon reports SSN {SSN}; card 4111 1111 1111 1111; call +44 20 7946 0958"
    cid = profiles.create({**PERSON, "health_notes": note}, "civil-registry")
    stored = profiles.read(cid, ["health_notes"]).values["health_notes"]
    # Forbidden types are redacted; allowed ones (the phone, the citizen's own name) stay as written.
    assert stored == "Zebulon reports SSN [US_SSN]; card [CREDIT_CARD]; call +44 20 7946 0958"
    findings = read_findings(vault.data_engine, cid)["health_notes"]
    assert findings["action"] == "redacted"
    assert findings["forbidden"] == ["CREDIT_CARD", "US_SSN"]
    assert set(findings["entities"]) == {"CREDIT_CARD", "PERSON", "PHONE_NUMBER", "US_SSN"}
    assert findings["entities"]["US_SSN"]["count"] == 1
    (row,) = stored_rows(vault)
    blob = json.dumps(row, default=str)
    for secret in (SSN, "4111", "7946", "Zebulon", "Quibblewick", "reports"):
        assert secret not in blob
    assert set(json.loads(row["findings"])) == {"entities", "forbidden", "action"}


def test_accept_stores_the_text_as_written_and_flags_it(vault: Vault) -> None:
    profiles = service(vault, "accept")
    note = f"SSN {SSN} written on the form"
    cid = profiles.create({**PERSON, "health_notes": note}, "civil-registry")
    assert profiles.read(cid, ["health_notes"]).values["health_notes"] == note
    findings = read_findings(vault.data_engine, cid)["health_notes"]
    assert (findings["action"], findings["forbidden"]) == ("accepted", ["US_SSN"])


def test_a_correction_is_screened_with_the_citizens_stored_values(vault: Vault) -> None:
    cid = vault.profiles.create({**PERSON, "health_notes": "Nothing noted."}, "civil-registry")
    assert read_findings(vault.data_engine, cid)["health_notes"]["entities"] == {}
    # Only the note changes; the name and national id come from the stored (encrypted) profile.
    vault.profiles.correct(cid, {"health_notes": "Mr QUIBBLEWICK was seen on Tuesday."}, "civil-registry")
    findings = read_findings(vault.data_engine, cid)["health_notes"]
    assert findings["entities"] == {"PERSON": {"count": 1, "max_score": 0.85}}
    assert findings["action"] == "none"
    # The shipped policy forbids the citizen's own national id in the note, however it is written.
    with pytest.raises(ValidationFailed) as caught:
        vault.profiles.correct(cid, {"health_notes": "His id is 961 000 777."}, "civil-registry")
    assert caught.value.problems == {"health_notes": "contains NATIONAL_ID; not allowed in this field"}
    assert vault.profiles.read(cid, ["health_notes"]).values["health_notes"] == "Mr QUIBBLEWICK was seen on Tuesday."


def test_removing_the_note_removes_its_findings(vault: Vault) -> None:
    profiles = service(vault, "accept")
    cid = profiles.create({**PERSON, "health_notes": f"SSN {SSN}"}, "civil-registry")
    assert "health_notes" in read_findings(vault.data_engine, cid)
    profiles.correct(cid, {"health_notes": None}, "civil-registry")
    assert read_findings(vault.data_engine, cid) == {}


def test_an_intake_with_an_injected_detector_screens_every_free_text_field(vault: Vault) -> None:
    class Fixed:
        def scan(self, text: str, own: Any = ()) -> list[Any]:
            return []

    intake = Intake(vault.catalogue, detector=Fixed)  # type: ignore[arg-type]
    assert intake.free_text == ["health_notes"]
    values, findings = intake.screen({"health_notes": "anything", "given_name": "X"})
    assert values["health_notes"] == "anything" and findings["health_notes"].action == "none"


def test_the_catalogue_refuses_unknown_entity_types_and_rules_on_fields_that_are_not_free_text() -> None:
    with pytest.raises(ValueError, match="unknown PII entity types: US_SNN"):
        PiiRule(forbidden=("US_SNN",))
    spec = Catalogue.load(Settings().catalogue_path).fields["address"]
    with pytest.raises(ValueError, match="pii rules need free_text"):
        type(spec).model_validate({**spec.model_dump(), "pii": {"forbidden": ["US_SSN"]}})


def test_erasure_drops_the_citizens_findings(vault: Vault) -> None:
    profiles = service(vault, "accept")
    cid = profiles.create({**PERSON, "health_notes": f"SSN {SSN}"}, "civil-registry")
    assert "health_notes" in read_findings(vault.data_engine, cid)
    profiles.erase(cid)
    assert read_findings(vault.data_engine, cid) == {}


@pytest.mark.parametrize("workers", [0, 2])
def test_an_import_screens_free_text_and_rejects_a_forbidden_id_by_line(
    vault: Vault, tmp_path: Path, workers: int
) -> None:
    from vault.importer import Importer  # noqa: PLC0415 - only this test imports files

    source = tmp_path / "people.jsonl"
    good = {**PERSON, "health_notes": "Zebulon Quibblewick seen, no findings."}
    bad = {**PERSON, "national_id": "961-000-778", "email": "other@example.org", "health_notes": f"SSN {SSN}"}
    source.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = Importer(vault.profiles, workers=workers).run(source, "civil-registry")
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.errors[0].line == 2
    assert result.errors[0].problems == {"health_notes": "contains US_SSN; not allowed in this field"}
    (row,) = stored_rows(vault)
    assert json.loads(row["findings"])["entities"]["PERSON"]["count"] == 2  # given and family name
    assert SSN not in json.dumps(row, default=str)


def test_a_note_read_through_a_grant_is_redacted_of_categories_outside_the_purpose(vault: Vault) -> None:
    from vault.audit.log import Actor  # noqa: PLC0415
    from vault.grants.service import GrantRequest  # noqa: PLC0415

    admin = Actor("admin@vault", "admin", "vault")
    vault.registry.create_agency("city-clinic", "City Clinic")
    vault.purposes.create(
        "care", "Treat", ["identity", "health"], "vital-interest", "Act s.1", 30, ["city-clinic"], actor=admin
    )
    vault.purposes.create(
        "stats", "Count visits", ["health"], "public-task", "Act s.2", 30, ["city-clinic"], actor=admin
    )
    note = "Zebulon Quibblewick seen; call +44 20 7946 0958 about results."
    cid = str(vault.profiles.create({**PERSON, "health_notes": note}, "civil-registry"))
    clinic = Actor("app", "agency-app", "city-clinic")
    texts = {}
    for purpose in ("care", "stats"):
        grant = vault.grants.request(clinic, GrantRequest([cid], purpose, ["health_notes"], 3600, 1))
        ((_, record),) = vault.grants.read(clinic, grant.id)[1]
        assert record is not None
        texts[purpose] = record["health_notes"]
    # Identity may be used for care: the name stays; the phone (contact) is outside both purposes.
    assert texts["care"] == "Zebulon Quibblewick seen; call [PHONE_NUMBER] about results."
    assert texts["stats"] == "[PERSON] [PERSON] seen; call [PHONE_NUMBER] about results."
