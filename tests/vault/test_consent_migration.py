"""Migration v0007 (versioned purposes, the purpose version of each consent and consent version) on
SQLite and PostgreSQL: existing purposes become version 1 with their wording kept, existing
consents and their history were given for it and still cover reads, the purpose history is
append-only, and the migration goes back and forth. Every person is invented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from keys import migrate
from tests.support.audit_helpers import BACKENDS, backend_settings
from tests.support.grants_helpers import BENEFITS, citizen_actor, citizen_fields
from vault.db import DATA_SCRIPTS, DATA_VERSION_TABLE
from vault.demo_registry import seed_purposes, seed_registry
from vault.grants.service import GrantRequest
from vault.registry import OPERATOR
from vault.runtime import Vault, init_vault


@pytest.fixture(params=BACKENDS)
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    opened = init_vault(backend_settings(request, tmp_path / "data", request.param))
    seed_registry(opened.registry)
    seed_purposes(opened.purposes)
    try:
        yield opened
    finally:
        opened.close()


def _columns(vault: Vault, table: str) -> set[str]:
    return {c["name"] for c in inspect(vault.data_engine).get_columns(table)}


def test_consents_from_before_versioned_purposes_were_given_for_version_one(vault: Vault) -> None:
    engine = vault.data_engine
    citizen = str(vault.profiles.create(citizen_fields(2), "civil-registry"))
    migrate.downgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE, "v0006")
    assert "purpose_version" not in _columns(vault, "consents")
    assert not inspect(engine).has_table("purpose_versions")
    # A consent as the code before v0007 stored it: no purpose version anywhere.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO consents (id, citizen_id, agency, purpose, categories, status, expires_at, version,"
                " updated_at) VALUES ('00000000-0000-4000-8000-00000000c0de', :c, 'benefits-office',"
                " 'benefit-eligibility', '[\"financial\", \"identity\"]', 'active', NULL, 1, '2026-01-01T00:00:00Z')"
            ),
            {"c": citizen},
        )
        conn.execute(
            text(
                "INSERT INTO consent_versions (consent_id, version, status, categories, expires_at, recorded_at,"
                " receipt) VALUES ('00000000-0000-4000-8000-00000000c0de', 1, 'active',"
                " '[\"financial\", \"identity\"]', NULL, '2026-01-01T00:00:00Z', 'a.b.c')"
            )
        )

    migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, version, description FROM purpose_versions ORDER BY code")).all()
        assert [(r.code, r.version) for r in rows] == [
            ("benefit-eligibility", 1),
            ("emergency-care", 1),
            ("tax-assessment", 1),
        ]
        assert {p.code: p.description for p in vault.purposes.all()} == {r.code: r.description for r in rows}
        assert conn.scalar(text("SELECT purpose_version FROM consent_versions")) == 1
    [consent] = vault.consents.find(citizen_id=citizen)
    assert (consent.status, consent.purpose_version, consent.current_purpose_version) == ("active", 1, 1)
    grant = vault.grants.request(BENEFITS, GrantRequest([citizen], "benefit-eligibility", ["income"], 3600, 2))
    assert vault.grants.read(BENEFITS, grant.id)[1] == [(citizen, {"income": 32_000})]

    # The purpose's history is append-only, like the consents'.
    for statement in ("UPDATE purpose_versions SET description = 'x'", "DELETE FROM purpose_versions"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))

    # A change after the migration is version 2, and the old consent now needs renewal.
    vault.purposes.update("benefit-eligibility", actor=OPERATOR, categories=["identity", "financial"])
    [consent] = vault.consents.find(citizen_id=citizen)
    assert consent.status == "renewal-required"
    renewed = vault.consents.renew(citizen, consent.id, actor=citizen_actor(citizen))
    assert (renewed.purpose_version, renewed.version, renewed.categories) == (2, 2, ["financial", "identity"])
    assert vault.grants.read(BENEFITS, grant.id)[1] == [(citizen, {"income": 32_000})]
