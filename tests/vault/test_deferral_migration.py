"""Migration v0009: deferrals made by one caseworker alone (before approvals existed) stop hiding
anything and wait for a compliance officer's review; downgrading keeps only approved ones. Both
backends. All data is fictitious."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from keys import migrate
from tests.support.audit_helpers import BACKENDS, CLERK, backend_settings
from vault.audit import deferral
from vault.audit.log import Actor, Event, iso
from vault.audit.review import access_log, default_window
from vault.db import DATA_SCRIPTS, DATA_VERSION_TABLE
from vault.runtime import Vault, init_vault

CASEWORKER = Actor("caseworker@tax-office", "caseworker", "tax-office")
APPROVER = Actor("compliance@vault", "compliance-officer", "vault")
CITIZEN = "5d1e6c1a-0000-4000-8000-00000000c0de"


@pytest.fixture(params=BACKENDS)
def vault_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    vault = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield vault
    vault.close()


def test_a_single_person_deferral_from_before_v0009_hides_nothing_and_is_flagged(vault_env: Vault) -> None:
    vault, engine = vault_env, vault_env.data_engine
    now = datetime.now(UTC)
    [read] = vault.audit.record(CLERK, Event("citizens.read", citizen_id=CITIZEN, fields=["income"]))
    migrate.downgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE, "v0006")
    [own] = vault.audit.record(CASEWORKER, Event("audit.defer", citizen_id=CITIZEN, reason="old style"))
    with engine.begin() as conn:
        for seq in (read, own):
            conn.execute(
                text(
                    "INSERT INTO audit_deferrals (seq, citizen_id, agency, legal_basis, until, recorded_by) "
                    "VALUES (:seq, :c, 'tax-office', 'x', :until, :own)"
                ),
                {"seq": seq, "c": CITIZEN, "until": iso(now + timedelta(days=900)), "own": own},
            )

    migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
    shown = {e.seq for e in access_log(engine, CITIZEN, now, 0, 100)[0]}
    assert {read, own} <= shown, "a deferral nobody approved still hides events"
    assert not deferral.has_deferred(engine, CITIZEN, now)
    [flag] = deferral.review_flags(engine, *default_window(now), now)
    assert flag.rule == "deferral-pending" and f"legacy-{own}" in flag.detail and flag.observed == 1
    assert flag.actor == "caseworker@tax-office" and flag.agency == "tax-office"
    # Its free-text basis is not registered: it can only be rejected (and requested again).
    bases = deferral.load_bases(vault.settings.deferral_bases_path)
    rejected = deferral.decide(vault.audit, APPROVER, f"legacy-{own}", False, None, bases)
    assert rejected.status == "rejected"

    # Downgrading keeps approved deferrals only, in the old table.
    made = deferral.request(vault.audit, CASEWORKER, [read], "tax-audit", now + timedelta(days=30), bases)
    deferral.decide(vault.audit, APPROVER, made.id, True, None, bases)
    migrate.downgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE, "v0006")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT seq, legal_basis FROM audit_deferrals ORDER BY seq")).all()
    assert len(kept) == 2 and tuple(kept[0]) == (read, "tax-audit")  # the read and its audit.defer
    migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
