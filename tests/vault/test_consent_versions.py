"""Consent versions (issue 19, findings 1 and 15): approving a request adds exactly what the citizen
approved to the consent they hold, one chain of versions per agency and purpose; purposes are
versioned and a material change asks the citizen again; refusals and a grant's reported status say
what happened to its basis. Every person here is invented."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Barrier, BrokenBarrierError, Event, local

import pytest
from jose import jws

from tests.support.audit_helpers import backend_settings
from tests.support.grants_helpers import BENEFITS, Clock, citizen_actor, citizen_fields, install_clock
from vault.consent.service import ConsentService
from vault.demo_registry import seed_purposes, seed_registry
from vault.errors import Conflict, Refused
from vault.grants.service import GrantRequest
from vault.registry import OPERATOR
from vault.runtime import Vault, init_vault
from vault.settings import Settings

PURPOSE = "benefit-eligibility"
AGENCY = "benefits-office"


@dataclass
class Setting:
    vault: Vault
    clock: Clock
    citizen: str

    def give(self, categories: list[str] | None, expires_in: timedelta | None = None) -> str:
        expires_at = self.clock.now + expires_in if expires_in else None
        actor = citizen_actor(self.citizen)
        return self.vault.consents.give(self.citizen, AGENCY, PURPOSE, categories, expires_at, actor=actor).id

    def ask(self, fields: list[str], max_uses: int = 5) -> str:
        """A single-citizen request: the grant's id, active or pending."""
        req = GrantRequest([self.citizen], PURPOSE, fields, 86_400 * 3, max_uses)
        try:
            return self.vault.grants.request(BENEFITS, req).id
        except Refused as exc:
            assert exc.reason == "consent-required"
            return exc.details["grant_id"]

    def refusal(self, grant_id: str) -> str:
        with pytest.raises(Refused) as refused:
            self.vault.grants.read(BENEFITS, grant_id)
        return refused.value.reason

    def receipts(self, consent_id: str) -> list[dict[str, object]]:
        rows = self.vault.consents.receipts(self.citizen, consent_id)
        return [json.loads(jws.get_unverified_claims(r["receipt"])) | {"row": r} for r in rows]


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    vault = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    seed_registry(vault.registry)
    seed_purposes(vault.purposes)
    citizen = str(vault.profiles.create(citizen_fields(1), "civil-registry"))
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    install_clock(vault, clock)
    try:
        yield Setting(vault, clock, citizen)
    finally:
        vault.close()


def test_approving_a_request_adds_its_categories_and_keeps_the_consents_expiry(setting: Setting) -> None:
    s = setting
    consent_id = s.give(["identity"], timedelta(days=1))
    expiry = s.vault.consents.get(s.citizen, consent_id).expires_at
    grant_id = s.ask(["income"])
    s.vault.grants.approve(citizen_actor(s.citizen), s.citizen, grant_id)
    consent = s.vault.consents.get(s.citizen, consent_id)
    assert (consent.categories, consent.expires_at, consent.version) == (["financial", "identity"], expiry, 2)
    receipts = s.receipts(consent_id)
    assert [r["consentVersion"] for r in receipts] == [1, 2]
    assert [r["services"][0]["purposes"][0]["piiCategory"] for r in receipts] == [  # type: ignore[index]
        ["identity"],
        ["financial", "identity"],
    ]
    assert s.vault.grants.read(BENEFITS, grant_id)[1][0][1] == {"income": 31_000}


def test_a_pending_request_shows_what_approving_would_make_of_the_consent(setting: Setting) -> None:
    s = setting
    consent_id = s.give(["identity"], timedelta(days=1))
    expiry = s.vault.consents.get(s.citizen, consent_id).expires_at
    grant_id = s.ask(["income"])
    [pending] = s.vault.grants.requests_for(s.citizen)
    preview = pending.consent
    assert pending.grant.id == grant_id
    assert (preview.consent_id, preview.held_categories, preview.added_categories) == (
        consent_id,
        ["identity"],
        ["financial"],
    )
    assert (preview.categories, preview.expires_at, preview.purpose_version) == (["financial", "identity"], expiry, 1)


def test_the_citizen_chooses_the_expiry_when_approving(setting: Setting) -> None:
    s = setting
    consent_id = s.give(["identity"], timedelta(days=1))
    grant_id = s.ask(["income"])
    chosen = s.clock.now + timedelta(days=30)
    s.vault.grants.approve(citizen_actor(s.citizen), s.citizen, grant_id, expires_at=chosen)
    consent = s.vault.consents.get(s.citizen, consent_id)
    assert consent.expires_at is not None
    assert datetime.fromisoformat(consent.expires_at.replace("Z", "+00:00")) == chosen


def test_approving_after_a_withdrawal_is_a_new_version_of_the_same_consent(setting: Setting) -> None:
    s = setting
    consent_id = s.give(["identity", "contact"])
    s.vault.consents.withdraw(s.citizen, consent_id, actor=citizen_actor(s.citizen))
    grant_id = s.ask(["income"])
    s.vault.grants.approve(citizen_actor(s.citizen), s.citizen, grant_id)
    [consent] = s.vault.consents.find(citizen_id=s.citizen)
    assert (consent.id, consent.version, consent.status, consent.categories) == (
        consent_id,
        3,
        "active",
        ["financial"],
    )
    assert [r["consentStatus"] for r in s.receipts(consent_id)] == ["ACTIVE", "WITHDRAWN", "ACTIVE"]


def test_a_material_purpose_change_needs_the_citizens_renewal_before_reads(setting: Setting) -> None:
    s = setting
    consent_id = s.give(None)
    grant_id = s.ask(["income"])
    assert s.vault.grants.read(BENEFITS, grant_id)[1][0][1] == {"income": 31_000}

    changed = s.vault.purposes.update(PURPOSE, actor=OPERATOR, description="Assess eligibility and pay benefits")
    assert changed.version == 2
    assert s.refusal(grant_id) == "consent-purpose-changed"
    shown = s.vault.grants.get(AGENCY, grant_id)
    assert (shown.status, shown.status_reason) == ("suspended", "consent-purpose-changed")
    [consent] = s.vault.consents.find(citizen_id=s.citizen)
    assert (consent.status, consent.purpose_version) == ("renewal-required", 1)

    renewed = s.vault.consents.renew(s.citizen, consent_id, actor=citizen_actor(s.citizen))
    assert (renewed.status, renewed.purpose_version, renewed.version) == ("active", 2, 2)
    assert s.vault.grants.get(AGENCY, grant_id).status == "active"
    assert s.vault.grants.read(BENEFITS, grant_id)[1][0][1] == {"income": 31_000}
    receipts = s.receipts(consent_id)
    assert [r["purposeVersion"] for r in receipts] == [1, 2]
    assert [r["services"][0]["purposes"][0]["purpose"] for r in receipts][1] == (  # type: ignore[index]
        "Assess eligibility and pay benefits"
    )
    with pytest.raises(Conflict):
        s.vault.consents.renew(s.citizen, consent_id, actor=citizen_actor(s.citizen))


def test_a_change_to_the_agencies_alone_is_not_material(setting: Setting) -> None:
    s = setting
    s.give(None)
    grant_id = s.ask(["income"])
    changed = s.vault.purposes.update(PURPOSE, actor=OPERATOR, agencies=[AGENCY, "city-clinic"])
    assert (changed.version, changed.agencies) == (1, ["benefits-office", "city-clinic"])
    assert s.vault.grants.read(BENEFITS, grant_id)[1][0][1] == {"income": 31_000}


def test_an_expired_consent_is_refused_as_expired_and_its_grant_says_so(setting: Setting) -> None:
    s = setting
    s.give(None, timedelta(minutes=30))
    grant_id = s.ask(["income"])
    s.clock.now += timedelta(hours=1)
    shown = s.vault.grants.get(AGENCY, grant_id)
    assert (shown.status, shown.status_reason) == ("suspended", "consent-expired")
    assert s.refusal(grant_id) == "consent-expired"


def test_a_narrowed_consent_is_refused_as_narrowed_and_its_grant_says_so(setting: Setting) -> None:
    s = setting
    s.give(None)
    grant_id = s.ask(["income"])
    s.give(["identity"])
    shown = s.vault.grants.get(AGENCY, grant_id)
    assert (shown.status, shown.status_reason) == ("suspended", "consent-narrowed")
    assert s.refusal(grant_id) == "consent-narrowed"


def test_an_expired_or_spent_grant_reports_it_before_any_read(setting: Setting) -> None:
    s = setting
    s.give(None)
    spent = s.ask(["income"], max_uses=1)
    s.vault.grants.read(BENEFITS, spent)
    assert s.vault.grants.get(AGENCY, spent).status == "exhausted"
    lapsing = s.ask(["income"])
    s.clock.now += timedelta(days=4)
    assert s.vault.grants.get(AGENCY, lapsing).status == "expired"


@pytest.mark.postgres
def test_two_first_consents_given_at_once_make_one_consent_with_two_versions(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two transactions that both find no consent yet must not both start a chain
    (a second active consent would survive the withdrawal of the first)."""
    vault = init_vault(backend_settings(request, tmp_path / "data", "postgresql"))
    try:
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        citizen = str(vault.profiles.create(citizen_fields(1), "civil-registry"))
        both_looked = Barrier(2, timeout=3)  # a serialised second giver never arrives: the first goes on alone
        original = ConsentService._current

        def looked(self: ConsentService, *args: object) -> object:
            found = original(self, *args)  # type: ignore[arg-type]
            with contextlib.suppress(BrokenBarrierError):
                both_looked.wait()
            return found

        monkeypatch.setattr(ConsentService, "_current", looked)

        def give(categories: list[str]) -> str:
            actor = citizen_actor(citizen)
            return vault.consents.give(citizen, AGENCY, PURPOSE, categories, None, actor=actor).id

        with ThreadPoolExecutor(2) as pool:
            ids = set(pool.map(give, [["identity"], ["financial"]]))
        consents = vault.consents.find(citizen_id=citizen)
        assert len(ids) == 1 and len(consents) == 1, [(c.id, c.version) for c in consents]
        assert consents[0].version == 2
    finally:
        vault.close()


def test_a_citizens_own_view_of_a_shared_grant_shows_their_own_consent_only(setting: Setting) -> None:
    """Another citizen narrowing their consent suspends the grant for them, not in this citizen's
    export: a co-citizen's consent is theirs (and checking it for every citizen of a bulk grant
    would cost one consent per citizen on each export)."""
    s = setting
    other = str(s.vault.profiles.create(citizen_fields(2), "civil-registry"))
    for who in (s.citizen, other):
        s.vault.consents.give(who, AGENCY, PURPOSE, None, None, actor=citizen_actor(who))
    shared = s.vault.grants.request(BENEFITS, GrantRequest([s.citizen, other], PURPOSE, ["income"], 86_400, 5)).id
    s.vault.consents.give(other, AGENCY, PURPOSE, ["identity"], None, actor=citizen_actor(other))
    assert s.vault.grants.get(AGENCY, shared).status == "suspended"  # the agency: a read would be refused
    [mine] = [g for g in s.vault.grants.about(s.citizen) if g.id == shared]
    [theirs] = [g for g in s.vault.grants.about(other) if g.id == shared]
    assert (mine.status, mine.status_reason) == ("active", None)
    assert (theirs.status, theirs.status_reason) == ("suspended", "consent-narrowed")


@pytest.mark.postgres
def test_concurrent_purpose_changes_never_undo_each_other(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change of agencies alone keeps the purpose's version; a concurrent material change built
    from the row read before it must not put the old agencies back (PostgreSQL)."""
    from vault.purposes.service import PurposeService  # noqa: PLC0415 - only this test patches it

    vault = init_vault(backend_settings(request, tmp_path / "data", "postgresql"))
    try:
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        before = vault.purposes.get(PURPOSE)
        both_read = Barrier(2, timeout=3)  # a serialised second change never arrives: the first goes on alone
        agencies_done = Event()
        kind_of = local()
        original = PurposeService.get

        def read(self: PurposeService, *args: object) -> object:
            found = original(self, *args)  # type: ignore[arg-type]
            if len(args) > 1:  # inside update's transaction
                with contextlib.suppress(BrokenBarrierError):
                    both_read.wait()
                if kind_of.kind == "wording":  # the bad order: the change of agencies commits first
                    agencies_done.wait(timeout=3)
            return found

        monkeypatch.setattr(PurposeService, "get", read)
        wording = before.description + " (reworded)"
        agencies = sorted({*before.agencies, "tax-office"})

        def change(kind: str) -> str:
            kind_of.kind = kind
            members: dict[str, object] = {"description": wording} if kind == "wording" else {"agencies": agencies}
            try:
                vault.purposes.update(PURPOSE, actor=OPERATOR, **members)  # type: ignore[arg-type]
            except Conflict:
                return "conflict"
            finally:
                if kind == "agencies":
                    agencies_done.set()
            return kind

        with ThreadPoolExecutor(2) as pool:
            done = set(pool.map(change, ["wording", "agencies"]))
        after = vault.purposes.get(PURPOSE)
        if "wording" in done:
            assert after.description == wording
        if "agencies" in done:
            assert after.agencies == agencies, "a change that succeeded was undone"
    finally:
        vault.close()
