"""A release reshaped as chart series: one line per group, one point per period (no new noise)."""

from __future__ import annotations

from typing import Any

from vault.insights.query import FAMILIES, Query, day_number, label, month_number

# metric (a released column) -> the family that releases it ("count" is always released)
METRICS = {
    "count": None,
    "ack_median_s": "ack_time",
    "ack_p90_s": "ack_time",
    "resolve_median_s": "resolve_time",
    "resolve_p90_s": "resolve_time",
    "ack_sla": "ack_sla",
    "resolve_sla": "resolve_sla",
    "rating_mean": "satisfaction",
    "rating_count": "satisfaction",
}
assert set(v for v in METRICS.values() if v) == set(FAMILIES)


def periods(query: Query) -> list[str]:
    """Every period label of the query's range, in order."""
    if query.period == "month":
        return [label("month", m) for m in range(month_number(query.start), month_number(query.end) + 1)]
    first, last = day_number(query.start), day_number(query.end)
    if query.period == "week":
        first -= (first + 3) % 7
        return [label("week", d) for d in range(first, last + 1, 7)]
    return [label("day", d) for d in range(first, last + 1)]


def series(query: Query, rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Rows of a release by period, as one series per group with a point (or null) for each period."""
    lines: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(str(row[d]) for d in query.by)
        lines.setdefault(key, {})[row["period"]] = row.get(metric)
    out = []
    for key in sorted(lines):
        values = lines[key]
        points = [{"period": p, "value": values.get(p)} for p in periods(query)]
        out.append({"key": dict(zip(query.by, key, strict=True)), "points": points})
    return out
