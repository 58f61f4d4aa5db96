"""What an analyst may ask, checked, and the exact sums it needs, read from the rollups.

A query groups by up to three of the dimensions below and optionally by a period (day, ISO week or
month), over whole UTC days ``start``..``end`` (inclusive). The dimensions are those of the facts
table and nothing finer: the coarse area is the finest place there is. The sums read here are exact
and never leave the vault: vault/insights/release.py adds the noise before anything is shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from vault.errors import ValidationFailed
from vault.insights.rollup import DAY
from vault.insights.tables import ACK, RES, insight_daily, insight_monthly

# dimension name (API) -> rollup column
DIMENSIONS = {"agency": "agency", "service": "service_code", "channel": "channel", "kind": "kind", "area": "area"}
PERIODS = ("day", "week", "month")
# Metric families: each is one release with its own share of the query's epsilon.
FAMILIES = ("ack_time", "resolve_time", "ack_sla", "resolve_sla", "satisfaction")
MAX_BY = 3
MAX_DAYS = 3660  # ten years: a bound on the work one query may ask for
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Query:
    """One insight query: group by ``by`` (and ``period``), days ``start``..``end``, these families."""

    by: tuple[str, ...]
    period: str | None
    start: date
    end: date
    families: tuple[str, ...] = FAMILIES

    def check(self) -> Query:
        """The query itself, or ValidationFailed naming each parameter in error."""
        problems: dict[str, str] = {}
        unknown = [d for d in self.by if d not in DIMENSIONS]
        if unknown:
            problems["by"] = f"unknown dimension; choose from {', '.join(DIMENSIONS)}"
        elif len(set(self.by)) != len(self.by):
            problems["by"] = "a dimension is named twice"
        elif len(self.by) > MAX_BY:
            problems["by"] = f"at most {MAX_BY} dimensions"
        if self.period is not None and self.period not in PERIODS:
            problems["period"] = f"choose from {', '.join(PERIODS)}"
        if [m for m in self.families if m not in FAMILIES] or len(set(self.families)) != len(self.families):
            problems["metrics"] = f"choose from count, {', '.join(FAMILIES)} (each once)"
        if self.end < self.start:
            problems["to"] = "must not be before from"
        elif (self.end - self.start).days >= MAX_DAYS:
            problems["to"] = f"a query spans at most {MAX_DAYS} days"
        if problems:
            raise ValidationFailed(problems)
        return self

    def params(self) -> dict[str, Any]:
        """The query as recorded with its release (and shown again)."""
        return {
            "by": list(self.by),
            "period": self.period,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "metrics": ["count", *self.families],
        }


def day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def month_number(day: date) -> int:
    """Months since January 1970."""
    return (day.year - 1970) * 12 + day.month - 1


def month_start(month: int) -> date:
    """The first day of a month number."""
    return date(1970 + month // 12, month % 12 + 1, 1)


def label(period: str | None, value: int) -> str:
    """A period number as shown: 2026-03-04, 2026-W10 (ISO week, by its Monday) or 2026-03."""
    if period == "month":
        return month_start(value).strftime("%Y-%m")
    when = EPOCH + timedelta(days=value)
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    return when.isoformat()


# The rollup columns each metric family needs (the count "n" is always read).
NEEDS = {
    "ack_time": ACK,
    "resolve_time": RES,
    "ack_sla": ("ack_ok", "ack_late"),
    "resolve_sla": ("res_ok", "res_late"),
    "satisfaction": ("rated", "rating_sum"),
}


def needed(query: Query) -> tuple[str, ...]:
    """The rollup columns a query sums: fewer columns, less work for the database."""
    return ("n", *(m for f in query.families for m in NEEDS[f]))


def _sums(
    conn: Connection, table: Any, period_col: str | None, keys: list[str], where: list[Any], names: tuple[str, ...]
) -> list[Any]:
    cols = [table.c[k] for k in keys]
    if period_col is not None:
        cols.insert(0, table.c[period_col])
    query = select(*cols, *(func.sum(table.c[m]) for m in names)).where(*where)
    return list(conn.execute(query.group_by(*cols)))


Groups = dict[tuple[str, ...], dict[str, int]]


def aggregate(conn: Connection, query: Query) -> Groups:
    """Exact sums of the needed columns per group key: the dimension values, then the period label if any.

    Whole months come from the monthly rollup and the days around them from the daily one, unless
    the query is by day or week (then every day is read from the daily rollup)."""
    keys, names = [DIMENSIONS[d] for d in query.by], needed(query)
    first, last = day_number(query.start), day_number(query.end)
    parts: list[tuple[str | None, list[Any]]] = []
    d, m = insight_daily.c, insight_monthly.c
    if query.period in ("day", "week"):
        parts.append(("day", _sums(conn, insight_daily, "day", keys, [d.day >= first, d.day <= last], names)))
    else:
        m1 = month_number(query.start) + (0 if query.start.day == 1 else 1)
        m2 = month_number(query.end + timedelta(days=1)) - 1  # the last month that ends by `end`
        by_month = query.period == "month"
        if m1 <= m2:
            mcol = "month" if by_month else None
            parts.append((mcol, _sums(conn, insight_monthly, mcol, keys, [m.month >= m1, m.month <= m2], names)))
            edges = [(first, day_number(month_start(m1)) - 1), (day_number(month_start(m2 + 1)), last)]
        else:
            edges = [(first, last)]
        for lo, hi in edges:  # the daily rollup has days only: by month, its days are summed below
            if lo <= hi:
                dcol = "day" if by_month else None
                parts.append((dcol, _sums(conn, insight_daily, dcol, keys, [d.day >= lo, d.day <= hi], names)))
    out: Groups = defaultdict(lambda: dict.fromkeys(names, 0))
    for pcol, rows in parts:
        for row in rows:
            dims = [str(v) for v in (row[1 : 1 + len(keys)] if pcol else row[: len(keys)])]
            values = row[1 + len(keys) :] if pcol else row[len(keys) :]
            if pcol:
                number = int(row[0])
                if query.period == "week":
                    number -= (number + 3) % 7  # to the Monday: 1970-01-01 was a Thursday
                elif query.period == "month" and pcol == "day":
                    number = month_number(EPOCH + timedelta(days=number))
                dims.append(label(query.period, number))
            sums = out[tuple(dims)]
            for name, v in zip(names, values, strict=True):
                sums[name] += int(v or 0)
    return dict(out)


def now_s() -> int:
    """The wall clock in epoch seconds (the default clock of the service)."""
    return int(datetime.now(UTC).timestamp())


def default_range(now: int, start: date | None, end: date | None) -> tuple[date, date]:
    """The days a query covers: as given, else up to today and 90 days back from its end."""
    last = end or datetime.fromtimestamp(now, UTC).date()
    return (start or last - timedelta(days=89)), last


__all__ = ["DAY", "FAMILIES", "Query", "aggregate", "default_range"]
