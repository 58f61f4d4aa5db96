"""Bodies of the audit routes: review responses, deferral requests, the citizen's access log.

Nothing writes audit events through these bodies: the log is appended by the services only.
"""

from __future__ import annotations

from pydantic import Field

from api.bounds import Instant, Line, Seq
from api.schemas import Strict


class AuditEventPublic(Strict):
    """One audit event as stored: ids, names and codes only, never a value."""

    seq: int
    ts: str
    actor: str
    role: str
    agency: str
    action: str
    citizen_id: str | None
    fields: list[str]
    purpose: str | None
    grant_id: str | None
    outcome: str
    reason: str | None
    request_id: str | None
    prev_hash: str
    hash: str


class AuditPage(Strict):
    """A page of events; pass ``next_after`` as ``after`` for the next page (null: no more)."""

    events: list[AuditEventPublic]
    next_after: int | None


class CheckpointPublic(Strict):
    """A signed checkpoint."""

    count: int
    head_hash: str
    ts: str
    kid: str
    signature: str


class FindingPublic(Strict):
    """Where the log stops matching."""

    seq: int
    kind: str
    detail: str


class AuditVerifyPublic(Strict):
    """Integrity of the log, and what an external verifier needs."""

    ok: bool
    events: int
    checkpoints: int
    head_count: int | None
    finding: FindingPublic | None
    latest_checkpoint: CheckpointPublic | None
    public_keys: dict[str, str]


class ReportRow(Strict):
    """Events of one agency, purpose, action and outcome, and the distinct citizens they concern."""

    agency: str
    purpose: str | None
    action: str
    outcome: str
    events: int
    citizens: int


class FlagPublic(Strict):
    """An unusual-access flag and the rule that raised it."""

    rule: str
    actor: str
    agency: str
    period: str
    observed: int
    threshold: float
    detail: str


class DeferralCreate(Strict):
    """Ask to defer disclosure of your agency's events to the citizen they concern (pending until approved)."""

    events: list[Seq] = Field(min_length=1, max_length=1000)
    legal_basis: Line = Field(
        min_length=1, max_length=64, description="The code of a registered basis (policies/deferral-bases.yaml)."
    )
    until: Instant


class DeferralPublic(Strict):
    """A deferral request and its decision. It names the deferral, never a position in the audit log."""

    id: str
    agency: str
    legal_basis: str
    until: str
    status: str = Field(description="pending (hides nothing), approved (hides until `until`) or rejected.")
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    events: int = Field(description="How many events the request names.")


class AccessEntryPublic(Strict):
    """One line of a citizen's access log."""

    seq: int
    ts: str
    who: str
    role: str
    agency: str
    action: str
    fields: list[str]
    purpose: str | None
    basis: str
    outcome: str
    lawful_basis: str | None = Field(
        description="The purpose's lawful basis: consent, legal-obligation, public-task or vital-interest "
        "(null when the event names no purpose)."
    )
    statute: str | None = Field(description="The statute the purpose named when the event happened, if any.")
    said: str | None = Field(
        default=None,
        description='An act of a representative in plain words ("Your guardian A. Example viewed your profile").',
    )


class AccessLogPage(Strict):
    """Who read what of yours, when, for what, on which basis."""

    entries: list[AccessEntryPublic]
    next_after: int | None
    deferred: bool = Field(
        description="Some entries about you are deferred under a registered legal basis and will appear "
        "when the deferral ends (which, how many and why are not shown)."
    )
