"""Turn exact sums into a differentially private release (docs/insights.md, "The defence").

The privacy unit is one interaction. Every interaction falls in exactly one group of a query, so
each release below is computed over all groups at once with the sensitivity of one interaction,
and the query's epsilon is split between them (sequential composition):

* counts, with the groups to show chosen on the noisy count (threshold >= k): 40 %;
* the number of groups that exist, from which the number suppressed is estimated: 10 %;
* the other 50 % shared equally by the metric families asked for: a duration histogram each for
  time to acknowledge and to resolve (median and p90 read from it), an on-time/late pair for each
  service level, and the rating count with the sum of ratings clamped to 1..5 (sensitivity 1 + 4).

Medians, percentiles, shares and means are computed from the noisy values only (post-processing
costs nothing), never from the exact sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vault.insights import noise
from vault.insights.noise import Cost
from vault.insights.query import NEEDS, Groups, Query
from vault.insights.tables import EDGES

COUNT_SHARE, GROUPS_SHARE = 0.4, 0.1
SEP = "\x1f"  # joins a group's key parts (never in a dimension value: they are codes)


@dataclass(frozen=True)
class Release:
    """What one query released: rows of noisy values, and what was left out and what it cost."""

    columns: list[str]
    rows: list[dict[str, Any]]
    suppressed_groups: int
    threshold: int
    cost: Cost
    notes: list[str] = field(default_factory=list)


def shares(query: Query, epsilon: float) -> dict[str, float]:
    """Each release's share of ``epsilon``."""
    rest = 1.0 - COUNT_SHARE - GROUPS_SHARE
    out = {"count": epsilon * (COUNT_SHARE + (0 if query.families else rest)), "groups": epsilon * GROUPS_SHARE}
    out |= {f: epsilon * rest / len(query.families) for f in query.families}
    return out


def quantile(hist: list[int], q: float) -> int | None:
    """The q-quantile (seconds) of a noisy duration histogram, interpolated within its bucket."""
    counts = [max(0, v) for v in hist]
    total = sum(counts)
    if total <= 0:
        return None
    goal, seen = q * total, 0
    for i, c in enumerate(counts):
        if c and seen + c >= goal:
            low = EDGES[i - 1] if i > 0 else 0
            high = EDGES[i] if i < len(EDGES) else low  # the open last bucket: "at least"
            return round(low + (high - low) * (goal - seen) / c)
        seen += c
    return EDGES[-1]


def _share(ok: int, late: int) -> float | None:
    ok, late = max(0, ok), max(0, late)
    return round(ok / (ok + late), 3) if ok + late > 0 else None


def _pick(groups: Groups, keys: list[tuple[str, ...]], names: tuple[str, ...]) -> list[int]:
    return [groups[k][n] for k in keys for n in names]


def release(query: Query, groups: Groups, epsilon: float, k: int, delta: float) -> Release:
    """Noisy rows for the groups whose noisy count reaches the threshold."""
    eps = shares(query, epsilon)
    counts = {SEP.join(key): sums["n"] for key, sums in groups.items()}
    shown, cost = noise.threshold_counts(counts, eps["count"], k, delta)
    existing, spent = noise.noisy_count(sum(1 for v in counts.values() if v > 0), eps["groups"])
    cost += spent
    keys = sorted(tuple(s.split(SEP)) if s else () for s in shown)
    columns = [*query.by, *(["period"] if query.period else []), "count"]
    rows: list[dict[str, Any]] = [
        {**dict(zip(columns, key, strict=False)), "count": shown[SEP.join(key)]} for key in keys
    ]
    for family in query.families:
        names = NEEDS[family]
        sensitivity = 5 if family == "satisfaction" else 1  # a rating moves the count by 1 and the sum by 4
        values, spent = noise.noisy_vector(_pick(groups, keys, names), sensitivity, eps[family])
        cost += spent
        width = len(names)
        for i, row in enumerate(rows):
            part = values[i * width : (i + 1) * width]
            row.update(_metrics(family, part))
    for family in query.families:
        columns += FAMILY_COLUMNS[family]
    suppressed = max(0, existing - len(rows))
    return Release(columns, rows, suppressed, noise.threshold_for(eps["count"], k, delta), cost)


FAMILY_COLUMNS = {
    "ack_time": ["ack_median_s", "ack_p90_s"],
    "resolve_time": ["resolve_median_s", "resolve_p90_s"],
    "ack_sla": ["ack_sla"],
    "resolve_sla": ["resolve_sla"],
    "satisfaction": ["rating_mean", "rating_count"],
}


def _metrics(family: str, part: list[int]) -> dict[str, Any]:
    if family in ("ack_time", "resolve_time"):
        prefix = "ack" if family == "ack_time" else "resolve"
        return {f"{prefix}_median_s": quantile(part, 0.5), f"{prefix}_p90_s": quantile(part, 0.9)}
    if family in ("ack_sla", "resolve_sla"):
        return {family: _share(part[0], part[1])}
    rated, total = part
    mean = min(5.0, max(1.0, 1 + total / rated)) if rated > 0 else None
    return {"rating_mean": round(mean, 2) if mean is not None else None, "rating_count": max(0, rated)}
