"""Grants, consents and purposes against a simple model, step by random step (Hypothesis stateful).

Each run starts from a copy of one SQLite vault (demo agencies and purposes, one extra consent
purpose, two citizens with complete profiles) and a clock the test moves by hand. The rules give,
narrow and withdraw consents, request grants (consent and legal-obligation purposes, own and other
agency, fields inside and outside the purpose; one or two citizens), approve pending requests,
revoke, read, move the clock and retire a purpose. The model predicts every outcome: a read returns
exactly the granted fields iff the grant is active, unexpired, has uses left and (consent basis)
every citizen's consent still covers it; otherwise the precise refusal. After every step the stored
state must equal the model: grant status, reason and uses (never above max_uses), pending and
per-citizen grant lists, consent status and versions (which only grow, one receipt per version),
one allowed grants.read audit event per record read. At the end the audit log verifies."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support.grants_helpers import (
    BENEFITS,
    CLINIC,
    TAX,
    Clock,
    citizen_actor,
    citizen_fields,
    count_events,
    install_clock,
)
from vault.audit.verify import verify_database
from vault.catalogue import Value
from vault.demo_registry import seed_purposes, seed_registry
from vault.errors import Conflict, NotFound, Refused, ValidationFailed
from vault.grants.service import GrantRequest
from vault.registry import OPERATOR
from vault.runtime import init_vault, open_vault
from vault.settings import Settings

# The purposes the machine plays with: code -> (lawful basis, agency, categories).
SURVEY = "housing-survey"
PURPOSES: dict[str, tuple[str, str, frozenset[str]]] = {
    "benefit-eligibility": ("consent", "benefits-office", frozenset({"identity", "contact", "financial"})),
    SURVEY: ("consent", "benefits-office", frozenset({"identity", "contact"})),
    "tax-assessment": ("legal-obligation", "tax-office", frozenset({"identity", "financial"})),
}
CONSENT_PURPOSES = sorted(p for p, (basis, _, _) in PURPOSES.items() if basis == "consent")
ACTORS = {BENEFITS.agency: BENEFITS, TAX.agency: TAX, CLINIC.agency: CLINIC}
CATEGORY = {
    "given_name": "identity",
    "family_name": "identity",
    "national_id": "identity",
    "email": "contact",
    "phone": "contact",
    "income": "financial",
    "health_notes": "health",
}
FIELD_SETS = [
    ["given_name"],
    ["given_name", "family_name"],
    ["email", "phone"],
    ["given_name", "email"],
    ["income"],
    ["national_id", "income"],
    ["given_name", "email", "income"],
    ["health_notes"],  # outside every purpose here: keep it last
]
DURATIONS = [120, 3600, 86_400]
CLOCK_STEPS = [timedelta(seconds=30)] * 2 + [timedelta(minutes=10), timedelta(hours=1), timedelta(days=1)]
CONSENT_EXPIRY = [None, timedelta(minutes=30), timedelta(hours=2), timedelta(days=3)]
LIVE = ("pending", "active")
# What a citizen consents to: empty means all of the purpose's categories; "health" is never allowed here.
CONSENT_CATEGORIES = [
    frozenset(),
    frozenset(),
    frozenset({"identity"}),
    frozenset({"contact"}),
    frozenset({"identity", "contact"}),
    frozenset({"identity", "financial"}),
    frozenset({"health"}),
]
# A grant is picked counting back from the newest among those in a wanted state (any state when none is).
PICK = st.integers(0, 4)
# Mostly True: the usual case (own agency, own citizen, a field set within the purpose ...).
USUALLY = st.sampled_from([True, True, True, True, False])


@dataclass
class ConsentModel:
    id: str
    citizen: str
    agency: str
    purpose: str
    categories: frozenset[str]
    expires_at: datetime | None
    status: str  # active | withdrawn (as stored: an expired consent is still "active" in its row)
    version: int


@dataclass
class GrantModel:
    id: str
    agency: str
    purpose: str
    basis: str
    fields: list[str]
    citizens: list[str]
    expires_at: datetime
    max_uses: int
    status: str
    status_reason: str | None
    consent_ids: dict[str, str | None] = field(default_factory=dict)
    uses: int = 0

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(CATEGORY[f] for f in self.fields)


@dataclass(frozen=True)
class Template:
    """A closed SQLite vault every run starts from (a copy of its data directory costs a millisecond;
    initialising a vault costs a hundred)."""

    data_dir: Path
    citizens: list[str]
    values: dict[str, dict[str, Value]]


def make_template(data_dir: Path) -> Template:
    """Demo agencies and purposes, the extra consent purpose, two citizens with complete profiles."""
    vault = init_vault(Settings(data_dir=data_dir, keyring_scrypt_n=2**10))
    try:
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        vault.purposes.create(
            SURVEY, "Survey housing needs", ["identity", "contact"], "consent", None, 365, ["benefits-office"],
            actor=OPERATOR,
        )  # fmt: skip
        ids = [vault.profiles.create(citizen_fields(n), "civil-registry") for n in range(2)]
        values = {str(c): dict(vault.profiles.read(c).values) for c in ids}
    finally:
        vault.close()
    return Template(data_dir, [str(c) for c in ids], values)


class GrantsMachine(RuleBasedStateMachine):
    """The vault's grants against the model; see the module docstring."""

    template: ClassVar[Template | None] = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        assert self.template is not None, "set GrantsMachine.template first"
        self.tmp = Path(tempfile.mkdtemp(prefix="cv-grants-state-"))
        shutil.copytree(self.template.data_dir, self.tmp / "data")
        self.vault = open_vault(Settings(data_dir=self.tmp / "data", keyring_scrypt_n=2**10))
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        install_clock(self.vault, self.clock)
        self.citizens = list(self.template.citizens)
        self.values = self.template.values
        self.retired: set[str] = set()
        self.consents: list[ConsentModel] = []
        self.grants: list[GrantModel] = []
        self.versions_seen: dict[str, int] = {}
        self.records_read = 0  # citizen records handed out by successful reads

    def teardown(self) -> None:
        # Runs after a failed step too: only a check that cannot follow from that failure belongs here
        # (an exception raised here would replace the step's own).
        try:
            report = verify_database(self.vault.audit)
            assert report.ok, f"audit log does not verify: {report.finding}"
        finally:
            self.vault.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the model's rules --------------------------------------------------------------------------
    def covering(self, citizen: str, agency: str, purpose: str, categories: frozenset[str]) -> ConsentModel | None:
        now = self.clock.now
        for c in self.consents:
            if (
                (c.citizen, c.agency, c.purpose) == (citizen, agency, purpose)
                and c.status == "active"
                and (c.expires_at is None or c.expires_at > now)
                and categories <= c.categories
            ):
                return c
        return None

    def lapse(self, citizen: str, agency: str, purpose: str, categories: frozenset[str]) -> str | None:
        """Why the citizen's consent does not cover these categories (None: it does)."""
        c = self.chain(citizen, agency, purpose)
        if c is None:
            return "consent-required"
        if c.status != "active":
            return "consent-withdrawn"
        if c.expires_at is not None and c.expires_at <= self.clock.now:
            return "consent-expired"
        return None if categories <= c.categories else "consent-narrowed"

    def chain(self, citizen: str, agency: str, purpose: str) -> ConsentModel | None:
        """The one consent (a chain of versions) of this citizen, agency and purpose."""
        return next((c for c in self.consents if (c.citizen, c.agency, c.purpose) == (citizen, agency, purpose)), None)

    def model_give(
        self, citizen: str, agency: str, purpose: str, categories: frozenset[str], expires_at: datetime | None
    ) -> ConsentModel:
        """A new version of the consent for (citizen, agency, purpose), even after a withdrawal, else a new one."""
        c = self.chain(citizen, agency, purpose)
        if c is not None:
            c.categories, c.expires_at, c.version, c.status = categories, expires_at, c.version + 1, "active"
            return c
        c = ConsentModel("?", citizen, agency, purpose, categories, expires_at, "active", 1)
        self.consents.append(c)
        return c

    def grant(self, pick: int, states: tuple[str, ...] | None = None, basis: str | None = None) -> GrantModel:
        """The ``pick``-th newest grant (wrapping around) in one of ``states`` and on ``basis``, else of all."""
        candidates = [
            g for g in self.grants if (states is None or g.status in states) and basis in (None, g.basis)
        ] or self.grants
        return candidates[-1 - pick % len(candidates)]

    def cascade(self, reason: str, *, purpose: str | None = None, consent_id: str | None = None) -> None:
        for g in self.grants:
            hit = g.purpose == purpose if purpose is not None else consent_id in g.consent_ids.values()
            if hit and g.status in LIVE:
                g.status, g.status_reason = "revoked", reason

    # -- rules ----------------------------------------------------------------------------------------
    @initialize(who=st.sampled_from([[0, 1], [0], [1], []]), purpose=st.sampled_from(CONSENT_PURPOSES))
    def first_consents(self, who: list[int], purpose: str) -> None:
        """Start (usually) with full consents to one purpose, so consent-based grants are common."""
        for i in who:
            self.give_consent(i, purpose, frozenset(), None)

    @rule(
        citizen=st.integers(0, 1),
        purpose=st.sampled_from(sorted(PURPOSES)),
        categories=st.sampled_from(CONSENT_CATEGORIES),
        expiry=st.sampled_from(CONSENT_EXPIRY),
    )
    def give_consent(self, citizen: int, purpose: str, categories: frozenset[str], expiry: timedelta | None) -> None:
        citizen_id = self.citizens[citizen]
        basis, agency, allowed = PURPOSES[purpose]
        expires_at = self.clock.now + expiry if expiry is not None else None
        call = partial(
            self.vault.consents.give,
            citizen_id, agency, purpose, sorted(categories), expires_at, actor=citizen_actor(citizen_id),
        )  # fmt: skip
        if purpose in self.retired or basis != "consent" or not categories <= allowed:
            event("give: invalid")
            with pytest.raises(ValidationFailed):
                call()
            return
        event("give: ok")
        consent = call()
        model = self.model_give(citizen_id, agency, purpose, frozenset(categories) or allowed, expires_at)
        if model.id == "?":
            model.id = consent.id
        assert consent.id == model.id, "a give must make a new version of the one consent of this agency and purpose"
        assert (consent.version, consent.status) == (model.version, "active")
        assert set(consent.categories) == model.categories

    @precondition(lambda self: any(g.basis == "consent" and g.status == "active" for g in self.grants))
    @rule(pick=PICK, expiry=st.sampled_from([None, timedelta(minutes=30)]))
    def narrow_consent_under_grant(self, pick: int, expiry: timedelta | None) -> None:
        """Change the consent under a live consent-based grant so that it no longer covers it (fewer
        categories) or soon stops covering it (an expiry): the grant stays active, its reads stop."""
        model = self.grant(pick, ("active",), "consent")
        event(f"narrow: {'expiry' if expiry else 'categories'}")
        _, _, allowed = PURPOSES[model.purpose]
        categories = allowed if expiry is not None else allowed - {min(model.categories)}
        self.give_consent(self.citizens.index(model.citizens[0]), model.purpose, categories, expiry)
        self.read_grant(model)

    @precondition(lambda self: self.consents)
    @rule(pick=st.integers(0, 100))
    def withdraw_consent(self, pick: int) -> None:
        model = self.consents[pick % len(self.consents)]
        call = partial(self.vault.consents.withdraw, model.citizen, model.id, actor=citizen_actor(model.citizen))
        event(f"withdraw: {model.status}")
        if model.status == "withdrawn":
            with pytest.raises(Conflict):
                call()
            return
        consent = call()
        model.status, model.version = "withdrawn", model.version + 1
        assert (consent.status, consent.version) == ("withdrawn", model.version)
        self.cascade("consent-withdrawn", consent_id=model.id)

    @rule(
        purpose=st.sampled_from(sorted(PURPOSES)),
        stranger=st.sampled_from([None] * 9 + ["benefits-office", "tax-office", "city-clinic"]),
        who=st.sampled_from([[0], [1], [0, 1]]),
        pick=st.integers(0, 100),
        inside=USUALLY,
        duration=st.sampled_from(DURATIONS),
        max_uses=st.integers(1, 3),
    )
    def request_grant(
        self,
        purpose: str,
        stranger: str | None,
        who: list[int],
        pick: int,
        inside: bool,
        duration: int,
        max_uses: int,
    ) -> None:
        """Mostly the purpose's own agency and fields within its categories; sometimes another
        agency (``stranger``) or fields outside (``not inside``)."""
        basis, purpose_agency, allowed = PURPOSES[purpose]
        within = [fs for fs in FIELD_SETS if {CATEGORY[f] for f in fs} <= allowed]
        fields = within[pick % len(within)] if inside else FIELD_SETS[-1]
        actor = ACTORS[stranger or purpose_agency]
        ids = sorted(self.citizens[i] for i in who)
        req = GrantRequest(ids, purpose, fields, duration, max_uses, case_ref="case-0001")
        categories = frozenset(CATEGORY[f] for f in fields)
        expected: str | None = None
        if purpose in self.retired:
            expected = "purpose-retired"
        elif actor.agency != purpose_agency:
            expected = "purpose-not-for-agency"
        elif not categories <= allowed:
            expected = "fields-outside-purpose"
        if expected is not None:
            event(f"request: {expected}")
            with pytest.raises(Refused) as refused:
                self.vault.grants.request(actor, req)
            assert refused.value.reason == expected
            return
        consent_ids: dict[str, str | None] = dict.fromkeys(ids)
        status = "active"
        if basis == "consent":
            covering = {c: self.covering(c, actor.agency, purpose, categories) for c in ids}
            consent_ids = {c: m.id if m else None for c, m in covering.items()}
            if any(m is None for m in covering.values()):
                with pytest.raises(Refused) as refused:
                    self.vault.grants.request(actor, req)
                assert refused.value.reason == "consent-required"
                if len(ids) > 1:
                    assert "grant_id" not in refused.value.details, "a multi-citizen refusal must store nothing"
                    return
                status = "pending"
                event("request: pending")
                grant_id = refused.value.details["grant_id"]
        if status == "active":
            event(f"request {basis}: active")
            grant = self.vault.grants.request(actor, req)
            assert (grant.status, grant.uses, grant.max_uses, grant.citizens) == ("active", 0, max_uses, len(ids))
            assert grant.fields == sorted(fields) and grant.lawful_basis == basis and grant.jws
            grant_id = grant.id
        self.grants.append(
            GrantModel(
                grant_id,
                actor.agency,
                purpose,
                basis,
                sorted(fields),
                ids,
                self.clock.now + timedelta(seconds=duration),
                max_uses,
                status,
                "consent-required" if status == "pending" else None,
                consent_ids,
            )
        )

    @precondition(lambda self: self.grants)
    @rule(pick=PICK, pending=USUALLY, own=USUALLY)
    def approve(self, pick: int, pending: bool, own: bool) -> None:
        """Mostly a pending request by its own citizen; sometimes any grant, or the other citizen."""
        model = self.grant(pick, ("pending",) if pending else None)
        citizen = model.citizens[0]
        if not own:
            citizen = next(c for c in self.citizens if c != citizen)
        call = partial(self.vault.grants.approve, citizen_actor(citizen), citizen, model.id)
        event(f"approve: {model.status}, {'own' if citizen in model.citizens else 'stranger'}")
        if model.status != "pending" or citizen not in model.citizens:
            with pytest.raises(NotFound):
                call()
            return
        if model.expires_at <= self.clock.now:
            with pytest.raises(Refused) as refused:
                call()
            assert refused.value.reason == "grant-expired"
            return
        grant = call()
        # Approving adds the request's categories to what the citizen holds (an active, unexpired
        # consent), keeping its expiry; after a withdrawal or expiry it holds nothing.
        held = self.chain(citizen, model.agency, model.purpose)
        keep = held is not None and self.lapse(citizen, model.agency, model.purpose, frozenset()) is None
        categories = (held.categories if held is not None and keep else frozenset()) | model.categories
        expiry = held.expires_at if held is not None and keep else None
        consent = self.model_give(citizen, model.agency, model.purpose, categories, expiry)
        if consent.id == "?":
            consent.id = next(c.id for c in self.vault.consents.find(citizen) if c.status == "active"
                              and (c.agency, c.purpose) == (model.agency, model.purpose))  # fmt: skip
        model.status, model.status_reason, model.consent_ids[citizen] = "active", None, consent.id
        assert grant.status == "active" and grant.jws

    @precondition(lambda self: self.grants)
    @rule(pick=PICK, own=USUALLY)
    def revoke(self, pick: int, own: bool) -> None:
        """Mostly by the grant's agency; sometimes by another one."""
        model = self.grant(pick)
        actor = ACTORS[model.agency] if own else CLINIC
        if not own:
            with pytest.raises(NotFound):
                self.vault.grants.revoke(actor, model.id)
            return
        grant = self.vault.grants.revoke(actor, model.id)
        if model.status in LIVE:
            model.status, model.status_reason = "revoked", "revoked-by-agency"
        assert grant.status == model.status

    def expected_refusal(self, model: GrantModel) -> str | None:
        """The reason the model says a read is refused (None: it returns data); applies the status
        change the vault records on a refusal for expiry or exhaustion."""
        now = self.clock.now
        if model.status == "active" and model.expires_at > now and model.uses < model.max_uses:
            if model.basis == "consent":
                for c in sorted(model.citizens):
                    if lapse := self.lapse(c, model.agency, model.purpose, model.categories):
                        return lapse
            return None
        if model.status in LIVE and model.expires_at <= now:
            model.status, model.status_reason = "expired", None
        elif model.status == "active":
            model.status = "exhausted"
        return {
            "pending": "consent-required",
            "revoked": "grant-revoked",
            "expired": "grant-expired",
            "exhausted": "grant-exhausted",
        }[model.status]

    @precondition(lambda self: self.grants)
    @rule(pick=PICK, active=USUALLY, own=USUALLY)
    def read(self, pick: int, active: bool, own: bool) -> None:
        """Mostly a grant stored as active (it may still have expired, run out or lost its consent),
        by its own agency; sometimes any grant, or another agency."""
        model = self.grant(pick, ("active",) if active else None)
        self.read_grant(model, own=own)

    def read_grant(self, model: GrantModel, *, own: bool = True) -> None:
        """Read through the grant; the model says whether it returns data or why it is refused."""
        if not own:
            with pytest.raises(NotFound):
                self.vault.grants.read(CLINIC if model.agency != CLINIC.agency else TAX, model.id)
            return
        actor = ACTORS[model.agency]
        reason = self.expected_refusal(model)
        event(f"read {model.basis}: {reason or 'data'}")
        if reason is not None:
            with pytest.raises(Refused) as refused:
                self.vault.grants.read(actor, model.id)
            assert refused.value.reason == reason, f"model expected {reason}, the vault said {refused.value}"
            return
        grant, records, cursor = self.vault.grants.read(actor, model.id)
        model.uses += 1
        assert cursor is None
        assert grant.uses == model.uses <= grant.max_uses
        assert [c for c, _ in records] == sorted(model.citizens)
        for citizen, values in records:
            assert values is not None
            assert sorted(values) == model.fields, "a read must return exactly the granted fields"
            assert values == {f: self.values[citizen][f] for f in model.fields}
        self.records_read += len(records)

    @precondition(lambda self: self.grants)
    @rule()
    def read_newest_active(self) -> None:
        """Reads are what the model is about: a second rule doubles their share of the steps."""
        self.read(0, True, True)

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, step: timedelta) -> None:
        self.clock.now += step

    @precondition(lambda self: len(self.grants) >= 3 and not self.retired)
    @rule(purpose=st.sampled_from(sorted(PURPOSES)))
    def retire_purpose(self, purpose: str) -> None:
        retired = self.vault.purposes.retire(purpose, actor=OPERATOR)
        assert retired.status == "retired"
        self.retired.add(purpose)
        self.cascade("purpose-retired", purpose=purpose)

    # -- invariants -----------------------------------------------------------------------------------
    def reported(self, model: GrantModel) -> tuple[str, str | None]:
        """The status and reason GET /v1/grants/{id} reports: derived from the basis for an active grant."""
        if model.status not in LIVE:
            return model.status, model.status_reason
        if model.expires_at <= self.clock.now:
            return "expired", None
        if model.status == "pending":
            return model.status, model.status_reason
        if model.uses >= model.max_uses:
            return "exhausted", model.status_reason
        lapses = [self.lapse(c, model.agency, model.purpose, model.categories) for c in sorted(model.citizens)]
        lapse = next((r for r in lapses if r), None) if model.basis == "consent" else None
        return ("suspended", lapse) if lapse else ("active", None)

    @invariant()
    def grants_match_the_model(self) -> None:
        for model in self.grants:
            grant = self.vault.grants.get(model.agency, model.id)
            assert (grant.status, grant.status_reason, grant.uses, grant.max_uses) == (
                *self.reported(model),
                model.uses,
                model.max_uses,
            ), f"grant {model.purpose}/{model.basis}: stored {grant}, model {model}"
            assert 0 <= grant.uses <= grant.max_uses
        for citizen in self.citizens:
            pending = [g.id for g in self.grants if g.status == "pending" and citizen in g.citizens]
            assert [g.id for g in self.vault.grants.pending_for(citizen)] == pending
            naming = {g.id for g in self.grants if citizen in g.citizens}
            assert {g.id for g in self.vault.grants.about(citizen)} == naming, "a grant the model never made"

    @invariant()
    def one_audit_event_per_record_read(self) -> None:
        allowed = count_events(self.vault.data_engine, "grants.read", "allowed")
        assert allowed == self.records_read, f"{allowed} allowed grants.read events, {self.records_read} records read"

    @invariant()
    def consents_match_the_model(self) -> None:
        now = self.clock.now
        for citizen in self.citizens:
            stored = {c.id: c for c in self.vault.consents.find(citizen)}
            models = {m.id: m for m in self.consents if m.citizen == citizen}
            assert set(stored) == set(models)
            for consent_id, consent in stored.items():
                model = models[consent_id]
                status = model.status
                if status == "active" and model.expires_at is not None and model.expires_at <= now:
                    status = "expired"
                assert (consent.status, consent.version, frozenset(consent.categories)) == (
                    status,
                    model.version,
                    model.categories,
                )
                assert consent.version >= self.versions_seen.get(consent_id, 0), "a consent version went back"
                self.versions_seen[consent_id] = consent.version
                receipts = self.vault.consents.receipts(citizen, consent_id)
                assert [r["version"] for r in receipts] == list(range(1, consent.version + 1))


def test_grants_follow_the_model(tmp_path: Path) -> None:
    GrantsMachine.template = make_template(tmp_path / "template")
    try:
        run_state_machine_as_test(
            GrantsMachine,
            settings=settings(
                max_examples=80,
                stateful_step_count=25,
                deadline=None,
                # CI replays the same examples every run (reproducible); developers explore new ones.
                derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        GrantsMachine.template = None
