"""Daily and monthly rollups of interaction_facts, rebuilt from the facts (docs/insights.md, "Speed").

A fact only ever counts in the rollup cell of the day it was created, so bringing the rollups up to
date after facts change means rebuilding the days those facts were created on. ``refresh`` rebuilds
the days from ``since`` on (every day when None) and then the months those days touch, in one
transaction: a query reads either the old rollup or the new one, never half of each. Items still
open change most; items created before the refresh window that change later are picked up by the
next full rebuild (``citizen-vault``'s operator runs one nightly; see docs/insights.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, delete, func, insert, select

from vault.insights.tables import ACK, BUCKETS, DIMENSIONS, EDGES, MEASURES, RES, insight_daily, insight_monthly
from vault.interactions.facts import interaction_facts as f

DAY = 86400
NO_AREA = "-"


def month_of(day: int) -> int:
    """Months since January 1970 of a day number (days since 1970-01-01, UTC)."""
    moment = datetime.fromtimestamp(day * DAY, UTC)
    return (moment.year - 1970) * 12 + moment.month - 1


def _bucket(duration: ColumnElement[Any], index: int) -> ColumnElement[Any]:
    """1 when ``duration`` falls in bucket ``index`` (EDGES), else 0."""
    low = EDGES[index - 1] if index > 0 else None
    high = EDGES[index] if index < len(EDGES) else None
    conds: list[ColumnElement[bool]] = [duration.is_not(None)]
    if low is not None:
        conds.append(duration >= low)
    if high is not None:
        conds.append(duration < high)
    return func.sum(case((and_(*conds), 1), else_=0))


def _sla(done: Any, target: Any, now: int) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(on time, late) sums: late when done after the target, or not done and the target has passed."""
    elapsed = done - f.c.created_s
    on_time = and_(target.is_not(None), done.is_not(None), elapsed <= target)
    late = and_(
        target.is_not(None),
        ((done.is_not(None)) & (elapsed > target)) | ((done.is_(None)) & (f.c.created_s + target < now)),
    )
    return func.sum(case((on_time, 1), else_=0)), func.sum(case((late, 1), else_=0))


def _daily_select(since_s: int | None, now: int) -> Any:
    day = (f.c.created_s // DAY).label("day")  # integer division on both backends
    ack = f.c.acknowledged_s - f.c.created_s
    res = f.c.resolved_s - f.c.created_s
    rating = case((f.c.rating.between(1, 5), f.c.rating), else_=None)  # clamped: only 1..5 counts
    area = func.coalesce(f.c.area, NO_AREA).label("area")
    keys = [day, f.c.agency, f.c.service_code, f.c.channel, f.c.kind, area]
    cols = [
        func.count().label("n"),
        *_sla(f.c.acknowledged_s, f.c.ack_target_s, now),
        *_sla(f.c.resolved_s, f.c.resolve_target_s, now),
        func.count(rating).label("rated"),
        func.coalesce(func.sum(rating - 1), 0).label("rating_sum"),  # shifted to 0..4: sensitivity 4
        *(_bucket(ack, i) for i in range(BUCKETS)),
        *(_bucket(res, i) for i in range(BUCKETS)),
    ]
    query = select(*keys, *cols).group_by(*keys)
    if since_s is not None:
        query = query.where(f.c.created_s >= since_s)
    return query


def refresh(conn: Connection, since_day: int | None, now: int) -> int:
    """Rebuild the daily rollup from ``since_day`` on (all when None) and the months it touches, in
    the caller's transaction; returns the number of daily cells written."""
    since_s = since_day * DAY if since_day is not None else None
    rows: list[dict[str, Any]] = []
    for row in conn.execute(_daily_select(since_s, now)):
        values = dict(zip(("day", *DIMENSIONS, *MEASURES), row, strict=True))
        values["day"] = int(values["day"])
        values["month"] = month_of(values["day"])
        values.update({m: int(values[m] or 0) for m in MEASURES})
        rows.append(values)
    d = insight_daily.c
    if since_day is None:
        conn.execute(delete(insight_daily))
        conn.execute(delete(insight_monthly))
        months = None
    else:
        conn.execute(delete(insight_daily).where(d.day >= since_day))
        months = sorted({month_of(since_day), *(r["month"] for r in rows)})
    _insert(conn, insight_daily, rows)
    _rebuild_months(conn, months)
    return len(rows)


def _insert(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        conn.execute(insert(table), list(rows[start : start + 2000]))


def _rebuild_months(conn: Connection, months: list[int] | None) -> None:
    """Monthly cells as sums of the daily ones (for ``months``, or all)."""
    d, m = insight_daily.c, insight_monthly.c
    keys = [d.month, *(d[k] for k in DIMENSIONS)]
    query = select(*keys, *(func.sum(d[x]) for x in MEASURES)).group_by(*keys)
    if months is not None:
        first = months[0]
        query = query.where(d.month >= first)
        conn.execute(delete(insight_monthly).where(m.month >= first))
    else:
        conn.execute(delete(insight_monthly))
    rows = [
        dict(zip(("month", *DIMENSIONS, *MEASURES), (*r[:6], *(int(v) for v in r[6:])), strict=True))
        for r in conn.execute(query)
    ]
    _insert(conn, insight_monthly, rows)


__all__ = ["ACK", "NO_AREA", "RES", "month_of", "refresh"]
