"""The analyst's pages (``/insights``, role analyst): docs/insights.md.

The same service as ``GET /v1/insights/summary``: a query spends privacy budget, so it is a form
(POST, CSRF-checked) and never a link a browser might prefetch; its answer is stored as a release,
and the browser is sent to it (post/redirect/get). Reading a release again, as a page or as CSV,
spends nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
from api.routes.insights import as_csv, service
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.render import Form, read_form, render
from vault.errors import NotFound, Refused, ValidationFailed
from vault.insights.query import DIMENSIONS, FAMILIES, PERIODS, Query, default_range
from vault.insights.service import Answer

router = APIRouter(include_in_schema=False)
DIMENSION_WORDS = {"agency": "Agency", "service": "Service", "channel": "Channel", "kind": "Kind", "area": "Area"}
FAMILY_WORDS = {
    "ack_time": "Time to acknowledge (median, 90th percentile)",
    "resolve_time": "Time to resolve (median, 90th percentile)",
    "ack_sla": "Acknowledged within target (share)",
    "resolve_sla": "Resolved within target (share)",
    "satisfaction": "Satisfaction (mean rating, number of ratings)",
}
COLUMN_WORDS = {
    "period": "Period",
    "count": "Interactions",
    "ack_median_s": "Acknowledge, median",
    "ack_p90_s": "Acknowledge, p90",
    "resolve_median_s": "Resolve, median",
    "resolve_p90_s": "Resolve, p90",
    "ack_sla": "Acknowledged in time",
    "resolve_sla": "Resolved in time",
    "rating_mean": "Mean rating",
    "rating_count": "Ratings",
}
CHART_BARS = 40
# The form's parameters -> the field each error is shown at (the vault names them as the API does)
WHERE = {"by": "by", "period": "period", "metrics": "metrics", "to": "end", "epsilon": "epsilon"}


def duration(seconds: Any) -> str:
    """Seconds in words a reader compares at a glance (45 min, 5.2 h, 3.1 days); '-' for none."""
    if seconds is None:
        return "-"
    value = float(seconds)
    if value < 3600:
        return f"{value / 60:.0f} min"
    if value < 86400:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} days"


def cell(column: str, value: Any) -> str:
    """A released value as shown in the table."""
    if column.endswith("_s"):
        return duration(value)
    if column.endswith("_sla") and value is not None:
        return f"{100 * float(value):.0f} %"
    return "-" if value is None else str(value)


def _home(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    first, last = default_range(service(request).clock(), None, None)
    typed = context.setdefault("typed", {})
    typed.setdefault("by", ["agency"])
    typed.setdefault("period", "month")
    typed.setdefault("start", first.isoformat())
    typed.setdefault("end", last.isoformat())
    typed.setdefault("metrics", list(FAMILIES))
    typed.setdefault("epsilon", f"{service(request).settings.insights_query_epsilon:g}")
    context.setdefault("errors", {})
    recent = [_recent_row(a) for a in service(request).recent(who.subject)]
    return render(
        request,
        "insights/home.html",
        status,
        budget=service(request).budget(who.subject),
        dimensions=[(d, DIMENSION_WORDS[d], "") for d in DIMENSIONS],
        families=[(f, FAMILY_WORDS[f], "") for f in FAMILIES],
        periods=[("", "No period"), *((p, p.capitalize()) for p in PERIODS)],
        recent=recent,
        max_epsilon=service(request).settings.insights_max_query_epsilon,
        **context,
    )


def _recent_row(answer: Answer) -> list[Any]:
    q = answer.query
    by = ", ".join(q["by"]) or "everything"
    link = {"text": f"{by} ({q['from']} to {q['to']})", "href": f"/insights/releases/{answer.id}"}
    return [link, f"{answer.epsilon:g}"]


@router.get("/insights")
def insights_home(request: Request, who: Principal = page_user("insights", "read")) -> Response:
    """Ask a question: dimensions, period, days and metrics; the budget left; earlier answers."""
    return _home(request, who)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _ask(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed: dict[str, Any] = {
        "by": form.getlist("by"),
        "period": form.get("period"),
        "start": form.get("start"),
        "end": form.get("end"),
        "metrics": form.getlist("metrics"),
        "epsilon": form.get("epsilon"),
    }
    errors: dict[str, str] = {}
    start, end = _day(typed["start"]), _day(typed["end"])
    if start is None:
        errors["start"] = "Enter the first day as 2026-03-01"
    if end is None:
        errors["end"] = "Enter the last day as 2026-05-31"
    try:
        epsilon: float | None = float(typed["epsilon"])
    except ValueError:
        epsilon, errors["epsilon"] = None, "Enter the privacy cost as a number, like 1 or 0.5"
    if errors or start is None or end is None or epsilon is None:
        return _home(request, who, 422, typed=typed, errors=errors)
    query = Query(tuple(typed["by"]), typed["period"] or None, start, end, tuple(typed["metrics"]))
    try:
        answer = service(request).query(actor(request, who), query, epsilon)
    except ValidationFailed as exc:
        errors = {WHERE.get(k, "by"): f"{k}: {why}" for k, why in exc.problems.items()}
        return _home(request, who, 422, typed=typed, errors=errors)
    except Refused as exc:
        words = str(exc).split(": ", 1)[-1]
        return _home(request, who, 403, typed=typed, errors={"epsilon": f"Your privacy budget is spent: {words}"})
    return RedirectResponse(f"/insights/releases/{answer.id}", status_code=303)


@router.post("/insights")
async def ask(request: Request, who: Principal = page_user("insights", "query")) -> Response:
    """Run the query (``GET /v1/insights/summary``'s service), then show its release."""
    form = await read_form(request)
    return await run_in_threadpool(_ask, request, who, form)


def _stored(request: Request, who: Principal, release_id: uuid.UUID) -> Answer:
    try:
        return service(request).stored(who.subject, str(release_id))
    except NotFound:
        raise ApiProblem(404, "not-found", "Not found", "no such release of yours") from None


@router.get("/insights/releases/{release_id}")
def release_page(release_id: uuid.UUID, request: Request, who: Principal = page_user("insights", "read")) -> Response:
    """One release: a chart of its counts, its table, what it cost and what was left out."""
    answer = _stored(request, who, release_id)
    columns: list[str] = answer.result["columns"]
    dims = [c for c in columns if c in DIMENSION_WORDS or c == "period"]
    rows = [[cell(c, row.get(c)) for c in columns] for row in answer.result["rows"]]
    bars = [{"label": " · ".join(str(r[d]) for d in dims) or "All", "value": r["count"]} for r in answer.result["rows"]]
    return render(
        request,
        "insights/release.html",
        answer=answer,
        head=[COLUMN_WORDS.get(c, DIMENSION_WORDS.get(c, c)) for c in columns],
        rows=rows,
        bars=bars[:CHART_BARS],
        more_bars=max(0, len(bars) - CHART_BARS),
        budget=service(request).budget(who.subject),
    )


@router.get("/insights/releases/{release_id}/csv")
def release_csv(release_id: uuid.UUID, request: Request, who: Principal = page_user("insights", "read")) -> Response:
    """The release as CSV (as ``GET /v1/insights/releases/{id}?format=csv``)."""
    return as_csv(_stored(request, who, release_id))
