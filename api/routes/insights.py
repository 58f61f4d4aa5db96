"""Insights for analysts: differentially private aggregates, their budget, and past releases.

Each query spends epsilon from the caller's budget and is audited (``insights.query``); reading a
past release or the budget spends nothing. The vault decides everything (vault/insights/); this
module parses, calls one service function and shapes the answer (JSON, CSV or chart series).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.bodies import AuthFirstRoute
from api.schemas_insights import BudgetPublic, InsightRelease, InsightSeries
from api.security.auth import Principal, actor, require
from vault.insights import query as q
from vault.insights.series import METRICS, series
from vault.insights.service import Answer, InsightService

router = APIRouter(tags=["insights"], route_class=AuthFirstRoute)
CSV = "text/csv; charset=utf-8"
Day = Annotated[date, Query(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
By = Annotated[
    str,
    Query(
        max_length=64,
        pattern=r"^[a-z_,]*$",
        description="Comma-separated dimensions: agency, service, channel, kind, area (at most 3).",
    ),
]
Metrics = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=r"^[a-z_,]*$",
        description="Comma-separated families besides count: ack_time, resolve_time, ack_sla, resolve_sla, "
        "satisfaction (default all). Fewer families: each gets more of the epsilon, so less noise.",
    ),
]
Epsilon = Annotated[
    float | None,
    Query(ge=0.01, le=10, description="Epsilon to spend, from 0.01 (default and maximum: the vault's settings)."),
]
Period = Literal["day", "week", "month"]
Metric = Literal[
    "count",
    "ack_median_s",
    "ack_p90_s",
    "resolve_median_s",
    "resolve_p90_s",
    "ack_sla",
    "resolve_sla",
    "rating_mean",
    "rating_count",
]
FORMATS: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}


def service(request: Request) -> InsightService:
    """The app's insight service."""
    insights: InsightService = request.app.state.insights
    return insights


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _query(
    request: Request, by: str, period: str | None, start: date | None, end: date | None, metrics: str | None
) -> q.Query:
    first, last = q.default_range(service(request).clock(), start, end)
    families = q.FAMILIES if metrics is None else tuple(m for m in _split(metrics) if m != "count")
    return q.Query(_split(by), period, first, last, families)


def as_csv(answer: Answer) -> Response:
    """A release as CSV: its columns, one row per released group (suppressed ones are absent)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = answer.result["columns"]
    writer.writerow(columns)
    for row in answer.result["rows"]:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    headers = {
        "Content-Disposition": f'attachment; filename="insights-{answer.id}.csv"',
        "X-Epsilon-Spent": f"{answer.epsilon:g}",
        "X-Suppressed-Groups": str(answer.result["suppressed_groups"]),
    }
    return Response(out.getvalue(), media_type=CSV, headers=headers)


def shaped(answer: Answer, fmt: str) -> Any:
    """JSON (the release) or CSV."""
    return as_csv(answer) if fmt == "csv" else InsightRelease(**answer.public())


@router.get("/v1/insights/summary", response_model=InsightRelease, responses=FORMATS)
def summary(
    request: Request,
    by: By = "",
    period: Period | None = None,
    start: Annotated[
        Day | None, Query(alias="from", description="First day (UTC); default 90 days before `to`.")
    ] = None,
    end: Annotated[Day | None, Query(alias="to", description="Last day, inclusive (UTC); default today.")] = None,
    metrics: Metrics = None,
    epsilon: Epsilon = None,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    who: Principal = require("insights", "query"),
) -> Any:
    """Counts, times to acknowledge and resolve (median, p90), SLA shares and satisfaction by the
    dimensions asked, with noise (differential privacy); spends epsilon from your budget."""
    query = _query(request, by, period, start, end, metrics)
    return shaped(service(request).query(actor(request, who), query, epsilon), fmt)


@router.get("/v1/insights/series", response_model=InsightSeries)
def chart_series(
    request: Request,
    metric: Metric = "count",
    by: By = "",
    period: Period = "week",
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
    epsilon: Epsilon = None,
    who: Principal = require("insights", "query"),
) -> InsightSeries:
    """One metric per group and period, ready to chart (suppressed cells are null); spends epsilon."""
    family = METRICS[metric]
    query = _query(request, by, period, start, end, family or "")
    answer = service(request).query(actor(request, who), query, epsilon)
    lines = series(query, answer.result["rows"], metric)
    budget = BudgetPublic(**answer.budget.public()) if answer.budget else None
    return InsightSeries(
        release_id=answer.id,
        metric=metric,
        period=period,
        epsilon_spent=answer.epsilon,
        suppressed_groups=answer.result["suppressed_groups"],
        series=lines,
        budget=budget,
    )


@router.get("/v1/insights/budget", response_model=BudgetPublic)
def budget(request: Request, who: Principal = require("insights", "read")) -> BudgetPublic:
    """Your privacy budget: limit, spent and left in this period, and when it renews."""
    return BudgetPublic(**service(request).budget(who.subject).public())


@router.get("/v1/insights/releases/{release_id}", response_model=InsightRelease, responses=FORMATS)
def stored_release(
    release_id: uuid.UUID,
    request: Request,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    who: Principal = require("insights", "read"),
) -> Any:
    """One of your past releases again, as JSON or CSV (free: it was already released to you)."""
    return shaped(service(request).stored(who.subject, str(release_id)), fmt)
