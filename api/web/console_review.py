"""The compliance console's reviews: integrity (verify now), reports with charts, flags and deferrals.

"Verify now" starts a walk that a progress page follows (console_verify.py); the integrity page shows
the newest recorded result.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.routes.audit import decide_deferral, report_rows, review_events, review_flags
from api.security.auth import Principal, agency_scope
from api.security.sessions import check_csrf, page_user
from api.web.console_log import read_filters
from api.web.render import Form, read_form, render
from vault.audit import deferral, review
from vault.errors import Conflict, Refused

router = APIRouter(include_in_schema=False)
_FINDING = re.compile(r"(?P<kind>[a-z-]+) at (?P<seq>\d+)")
DeferralId = Annotated[uuid.UUID, Path()]
# What a refused decision means, in plain words (the page shows only these fixed texts).
DECISION_PROBLEMS = {
    "approver-is-requester": "You asked for this deferral: another compliance officer must decide it.",
    "conflict": "This request cannot be approved any more (already decided, its date has passed, its legal basis "
    "is no longer registered, or its events are in another deferral). Reject it instead, or ask again.",
}
DONE = {"approved": "The deferral was approved.", "rejected": "The deferral was rejected: it hides nothing."}


def last_verification(request: Request, who: Principal) -> dict[str, Any] | None:
    """The newest ``audit.verify`` event in ``who``'s agencies, as the page shows it."""
    flt = review.EventFilter(action="audit.verify")
    page, _ = review_events(request, who, flt, 0, 1, newest_first=True, what="integrity")
    if not page:
        return None
    event = page[0]
    found = _FINDING.fullmatch(event.reason or "")
    return {
        "seq": event.seq,
        "ts": event.ts,
        "actor": event.actor,
        "intact": event.reason == "intact",
        "kind": found["kind"] if found else None,
        "bad_seq": int(found["seq"]) if found else None,
        "reason": event.reason or "",
    }


@router.get("/console/integrity")
def integrity(request: Request, who: Principal = page_user("audit", "read")) -> Response:
    """The last verification (``audit.read`` as a review), the last signed checkpoint, "verify now"."""
    last = last_verification(request, who)
    checkpoint = request.app.state.vault.audit.latest_checkpoint()
    just_run = request.query_params.get("verified") == "1"
    return render(request, "console/integrity.html", last=last, checkpoint=checkpoint, just_run=just_run)


def _totals(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row[key] or "(no purpose)"] += int(row["events"])
    return [{"label": label, "value": value} for label, value in sorted(counts.items())]


@router.get("/console/reports")
def reports(request: Request, who: Principal = page_user("audit", "read")) -> Response:
    """Events per agency and per purpose (the API's report), charted and tabled."""
    query = read_filters(request)
    scope = agency_scope(who, query.values["agency"] or None)
    if query.errors:
        return render(request, "console/reports.html", status=422, query=query, scope=scope, rows=[], charts={})
    flt = review.EventFilter(
        agency=query.filters.agency, purpose=query.filters.purpose, since=query.filters.since, until=query.filters.until
    )
    rows = report_rows(request, who, flt)
    charts = {"agency": _totals(rows, "agency"), "purpose": _totals(rows, "purpose")}
    table = [[r["agency"], r["purpose"] or "-", r["action"], r["outcome"], r["events"], r["citizens"]] for r in rows]
    return render(request, "console/reports.html", query=query, scope=scope, rows=table, charts=charts)


@router.get("/console/flags")
def flags(request: Request, who: Principal = page_user("audit", "read")) -> Response:
    """Unusual access and deferrals to review (the API's flags), and the pending deferrals to decide."""
    query = read_filters(request)
    scope = agency_scope(who, None)
    if query.errors:
        empty: dict[str, Any] = {"flags": [], "pending": [], "problem": None, "done": None}
        return render(request, "console/flags.html", status=422, query=query, **empty)
    found = review_flags(request, who, query.filters.since, query.filters.until)
    pending = deferral.pending(request.app.state.vault.data_engine, scope)
    problem = DECISION_PROBLEMS.get(request.query_params.get("problem", ""))
    done = DONE.get(request.query_params.get("done", ""))
    rows = [[f.rule, f.actor, f.agency, f.period, f.observed, f.detail] for f in found]
    return render(request, "console/flags.html", query=query, flags=rows, pending=pending, problem=problem, done=done)


def _decide(request: Request, who: Principal, deferral_id: uuid.UUID, approve: bool, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    try:
        decided = decide_deferral(request, who, deferral_id, approve)
    except Refused as refused:
        code = refused.reason if refused.reason in DECISION_PROBLEMS else "conflict"
        return RedirectResponse(f"/console/flags?problem={code}", status_code=303)
    except Conflict:
        return RedirectResponse("/console/flags?problem=conflict", status_code=303)
    return RedirectResponse(f"/console/flags?done={decided.status}", status_code=303)


@router.post("/console/deferrals/{deferral_id}/approve")
async def approve(
    request: Request, deferral_id: DeferralId, who: Principal = page_user("audit-deferrals", "approve")
) -> Response:
    """Approve a pending deferral (CSRF-protected): ``vault.audit.deferral.decide``, as the API."""
    form = await read_form(request)
    return await run_in_threadpool(_decide, request, who, deferral_id, True, form)


@router.post("/console/deferrals/{deferral_id}/reject")
async def reject(
    request: Request, deferral_id: DeferralId, who: Principal = page_user("audit-deferrals", "approve")
) -> Response:
    """Reject a pending deferral (CSRF-protected): it never hides anything."""
    form = await read_form(request)
    return await run_in_threadpool(_decide, request, who, deferral_id, False, form)
