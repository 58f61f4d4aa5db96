"""Compliance review of the audit log (read-only), deferred disclosure, and the citizen's access log."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.bodies import AuthFirstRoute
from api.bounds import LINE, Instant, Seq
from api.errors import ApiProblem
from api.routes.consents import citizen_of
from api.schemas_audit import (
    AccessEntryPublic,
    AccessLogPage,
    AuditEventPublic,
    AuditPage,
    AuditVerifyPublic,
    CheckpointPublic,
    DeferralCreate,
    DeferralPublic,
    FindingPublic,
    FlagPublic,
    ReportRow,
)
from api.security.auth import Principal, actor, agency_scope, require
from vault import citizen_export
from vault.audit import deferral, review, verify_runs
from vault.audit import export as audit_export
from vault.audit.log import Event
from vault.audit.review import Flag
from vault.audit.verify import Report
from vault.representation import wording

router = APIRouter(tags=["audit"], route_class=AuthFirstRoute)
Code = Annotated[str | None, Query(min_length=1, max_length=64, pattern=LINE)]
Cursor = Annotated[Seq, Query(description="Return events after this sequence number (the last page's next_after).")]
When = Annotated[Instant | None, Query()]
Limit = Annotated[int, Query(ge=1, le=review.MAX_PAGE)]


def _check_window(since: datetime | None, until: datetime | None) -> None:
    """422 for an empty window (each end is an Instant already: aware, within range)."""
    if since and until and since >= until:
        raise ApiProblem(422, "invalid-request", "The request is not valid", "since must be before until")


def _filters(
    citizen_id: uuid.UUID | None = None,
    agency: Code = None,
    actor_: Annotated[str | None, Query(alias="actor", min_length=1, max_length=256, pattern=LINE)] = None,
    action: Code = None,
    outcome: Annotated[str | None, Query(pattern="^(allowed|denied|failed)$")] = None,
    purpose: Code = None,
    since: When = None,
    until: When = None,
) -> review.EventFilter:
    """The filters of /v1/audit/events and /v1/audit/export, declared once (agency not yet scoped)."""
    _check_window(since, until)
    return review.EventFilter(
        str(citizen_id) if citizen_id else None, agency, actor_, action, outcome, purpose, since, until
    )


Filters = Annotated[review.EventFilter, Depends(_filters)]


def _scoped(filters: review.EventFilter, who: Principal) -> review.EventFilter:
    """``filters`` limited to the agencies ``who`` may review (403 when asking for another)."""
    return dataclasses.replace(filters, agency=agency_scope(who, filters.agency))


# The reviews below are shared by the API routes and the compliance console's pages (api/web/console*.py):
# one implementation, so a page view is audited exactly as the API call.
def review_events(
    request: Request,
    who: Principal,
    filters: review.EventFilter,
    after: int,
    limit: int,
    newest_first: bool = False,
    what: str | None = None,
) -> tuple[list[review.StoredEvent], int | None]:
    """A page of ``filters`` within ``who``'s agencies, after an ``audit.read`` event (``what``: its reason)."""
    flt = _scoped(filters, who)
    vault = request.app.state.vault
    # The review names the citizen in its reason, not as citizen_id: a review is not an access to the
    # citizen's data, and showing it in their access log could reveal a deferred investigation.
    what = what or (f"events citizen={flt.citizen_id}" if flt.citizen_id else "events")
    vault.audit.record(actor(request, who), Event("audit.read", reason=what))
    return review.events(vault.data_engine, flt, after, limit, newest_first)


def verify_now(request: Request, who: Principal) -> Report:
    """Re-walk the whole chain, then record ``audit.verify`` with the result."""
    report, _ = verify_runs.verify_and_record(request.app.state.vault.audit, actor(request, who))
    return report


def report_rows(request: Request, who: Principal, flt: review.EventFilter) -> list[dict[str, Any]]:
    """The per agency and purpose report of ``flt`` within ``who``'s agencies (audited ``audit.read``)."""
    flt = _scoped(flt, who)
    vault = request.app.state.vault
    vault.audit.record(actor(request, who), Event("audit.read", reason="report"))
    return review.access_report(vault.data_engine, flt)


def review_flags(request: Request, who: Principal, since: datetime | None, until: datetime | None) -> list[Flag]:
    """Unusual access and deferrals to review in the window, within ``who``'s agencies (``audit.read``)."""
    start, end = review.default_window(datetime.now(UTC))
    vault = request.app.state.vault
    vault.audit.record(actor(request, who), Event("audit.read", reason="flags"))
    scope = agency_scope(who, None)
    flags = review.unusual_access(vault.data_engine, since or start, until or end)
    # Deferrals to review: pending, active (ending soon marked) and those that ended in the window.
    flags += deferral.review_flags(vault.data_engine, since or start, until or end, datetime.now(UTC))
    return [f for f in flags if scope is None or f.agency == scope]


def decide_deferral(request: Request, who: Principal, deferral_id: uuid.UUID, approve: bool) -> deferral.Deferral:
    """Approve or reject a pending deferral as ``who`` (their agency's, or any when the operator's)."""
    vault = request.app.state.vault
    bases = deferral.load_bases(vault.settings.deferral_bases_path)
    scope = agency_scope(who, None)
    return deferral.decide(vault.audit, actor(request, who), str(deferral_id), approve, scope, bases)


EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def export_download(
    request: Request, who: Principal, filters: review.EventFilter, fmt: Literal["jsonl", "csv"]
) -> StreamingResponse:
    """The export of ``filters`` within ``who``'s agencies, audited ``audit.export`` before any byte."""
    flt = _scoped(filters, who)
    vault = request.app.state.vault
    done = audit_export.export_for_download(vault.audit, actor(request, who), fmt, flt, vault.settings.data_dir)
    return StreamingResponse(
        done.chunks(),
        media_type=EXPORT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="audit-export.{fmt}"'},
    )


@router.get("/v1/audit/events", response_model=AuditPage)
def audit_events(
    request: Request,
    filters: Filters,
    after: Cursor = 0,
    limit: Limit = 100,
    who: Principal = require("audit", "read"),
) -> AuditPage:
    """Filtered events, oldest first, cursor-paged. Reviewing is itself audited."""
    page, next_after = review_events(request, who, filters, after, limit)
    return AuditPage(events=[AuditEventPublic(**e.public()) for e in page], next_after=next_after)


@router.get("/v1/audit/verify", response_model=AuditVerifyPublic)
def audit_verify(request: Request, who: Principal = require("audit", "read")) -> AuditVerifyPublic:
    """Re-walk the chain and check every signed checkpoint and the head."""
    report = verify_now(request, who)
    log = request.app.state.vault.audit
    latest = log.latest_checkpoint()
    return AuditVerifyPublic(
        ok=report.ok,
        events=report.events,
        checkpoints=report.checkpoints,
        head_count=report.head_count,
        finding=FindingPublic(**vars(report.finding)) if report.finding else None,
        latest_checkpoint=CheckpointPublic(**latest.public()) if latest else None,
        public_keys=log.signer.public_keys_b64(),
    )


@router.get("/v1/audit/report", response_model=list[ReportRow])
def audit_report(
    request: Request,
    agency: Code = None,
    purpose: Code = None,
    since: When = None,
    until: When = None,
    who: Principal = require("audit", "read"),
) -> list[ReportRow]:
    """Per agency and purpose: events by action and outcome, and distinct citizens concerned."""
    _check_window(since, until)
    flt = review.EventFilter(agency=agency, purpose=purpose, since=since, until=until)
    return [ReportRow(**row) for row in report_rows(request, who, flt)]


@router.get("/v1/audit/flags", response_model=list[FlagPublic])
def audit_flags(
    request: Request,
    since: When = None,
    until: When = None,
    who: Principal = require("audit", "read"),
) -> list[FlagPublic]:
    """Unusual access (volume far above the agency's usual, denial bursts, outside-purpose attempts)."""
    _check_window(since, until)
    return [FlagPublic(**vars(f)) for f in review_flags(request, who, since, until)]


@router.post("/v1/audit/deferrals", status_code=201, response_model=DeferralPublic)
def create_deferral(
    body: DeferralCreate, request: Request, who: Principal = require("audit-deferrals", "create")
) -> DeferralPublic:
    """Ask to defer showing your agency's events to the citizen until a date, under a registered legal
    basis; the request hides nothing until a compliance officer other than you approves it."""
    vault = request.app.state.vault
    bases = deferral.load_bases(vault.settings.deferral_bases_path)
    made = deferral.request(vault.audit, actor(request, who), body.events, body.legal_basis, body.until, bases)
    return DeferralPublic(**made.public())


def _decide(request: Request, who: Principal, deferral_id: uuid.UUID, approve: bool) -> DeferralPublic:
    return DeferralPublic(**decide_deferral(request, who, deferral_id, approve).public())


@router.post("/v1/audit/deferrals/{deferral_id}/approve", response_model=DeferralPublic)
def approve_deferral(
    deferral_id: uuid.UUID, request: Request, who: Principal = require("audit-deferrals", "approve")
) -> DeferralPublic:
    """Approve a pending deferral (a compliance officer of its agency or of the operator, not its requester)."""
    return _decide(request, who, deferral_id, approve=True)


@router.post("/v1/audit/deferrals/{deferral_id}/reject", response_model=DeferralPublic)
def reject_deferral(
    deferral_id: uuid.UUID, request: Request, who: Principal = require("audit-deferrals", "approve")
) -> DeferralPublic:
    """Reject a pending deferral: it never hides anything, and its events may be named again."""
    return _decide(request, who, deferral_id, approve=False)


@router.get(
    "/v1/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def audit_export_events(
    request: Request,
    filters: Filters,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format")] = "jsonl",
    who: Principal = require("audit", "export"),
) -> StreamingResponse:
    """Events matching the filters of /v1/audit/events, as JSON Lines signed exactly like
    `citizen-vault audit export` (verifiable with the public key alone) or CSV; audited as audit.export."""
    return export_download(request, who, filters, fmt)


@router.get("/v1/me/access-log", response_model=AccessLogPage)
def my_access_log(
    request: Request, after: Cursor = 0, limit: Limit = 100, who: Principal = require("me", "read")
) -> AccessLogPage:
    """Who read what of yours, when, for which purpose and on which basis (deferred entries appear later);
    ``said``: an act of a representative in plain words ("your guardian A. Example viewed your profile")."""
    citizen = citizen_of(who)
    vault = request.app.state.vault
    entries, next_after, deferred = citizen_export.access_page(vault, citizen, actor(request, who), after, limit)
    words = wording.said(vault.profiles, entries, actor(request, who))
    return AccessLogPage(
        entries=[AccessEntryPublic(**vars(e), said=words.get(e.seq)) for e in entries],
        next_after=next_after,
        deferred=deferred,
    )
