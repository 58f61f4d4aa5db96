"""Bodies of the insights routes: released (noisy) aggregates, never an exact count or a record."""

from __future__ import annotations

from typing import Any

from api.schemas import Strict


class BudgetPublic(Strict):
    """The analyst's privacy budget in the current period."""

    epsilon_limit: float
    epsilon_spent: float
    epsilon_remaining: float
    renews_at: str


class InsightRelease(Strict):
    """One release: the query, its rows of noisy values, what was suppressed and what it cost.

    ``rows`` hold the query's dimensions (and ``period``) and the metrics asked for; a group whose
    noisy count is below ``threshold`` (never below ``k``) is absent. ``suppressed_groups`` is a
    noisy estimate of how many groups were left out, never which."""

    release_id: str
    query: dict[str, Any]
    epsilon_spent: float
    delta: float
    columns: list[str]
    rows: list[dict[str, str | int | float | None]]
    k: int
    threshold: int
    suppressed_groups: int
    budget: BudgetPublic | None = None


class SeriesPoint(Strict):
    """One period of a series: the released value, or null where the cell was suppressed."""

    period: str
    value: int | float | None


class Series(Strict):
    """One line of a chart: a group (its dimension values) over the periods of the query."""

    key: dict[str, str]
    points: list[SeriesPoint]


class InsightSeries(Strict):
    """A chart-ready release: one metric of each group, period by period."""

    release_id: str
    metric: str
    period: str
    epsilon_spent: float
    suppressed_groups: int
    series: list[Series]
    budget: BudgetPublic | None = None
