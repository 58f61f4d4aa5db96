"""Daily and monthly rollups of interaction_facts, rebuilt from the facts (docs/insights.md, "Speed").

A fact only ever counts in the rollup cell of the day it was created, so bringing the rollups up to
date after facts change means rebuilding the days those facts were created on. ``refresh`` rebuilds
the recent days (a week per transaction) and then the months they fall in. A query running during a
rebuild may read some days before and some after it: within a refresh interval, as every answer is.
Items still open change most; an item created before the recent window that changes later is
picked up by the first refresh of each UTC day, which rebuilds every day (docs/insights.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, delete, func, insert, literal, select, text

from keys.sqlstore import writing
from vault.insights.tables import (
    ACK,
    BUCKETS,
    DIMENSIONS,
    EDGES,
    MEASURES,
    RES,
    insight_daily,
    insight_monthly,
    insight_refresh,
)
from vault.interactions.facts import interaction_facts as f

DAY = 86400
EPOCH = date(1970, 1, 1)
WEEK = 7  # days rebuilt per transaction
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


def rebuild_days(conn: Connection, first: int, last: int, now: int) -> None:
    """Rebuild the daily cells of days ``first``..``last`` (inclusive) in the caller's transaction,
    as one INSERT ... SELECT: nothing travels between the database and Python."""
    d = insight_daily.c
    conn.execute(delete(insight_daily).where(d.day >= first, d.day <= last))
    query = _daily_select(first * DAY, now).where(f.c.created_s < (last + 1) * DAY)
    conn.execute(insert(insight_daily).from_select(["day", *DIMENSIONS, *MEASURES], query))


def day_range(month: int) -> tuple[int, int]:
    """The first and last day numbers of a month number."""
    first = date(1970 + month // 12, month % 12 + 1, 1)
    after = date(1970 + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return (first - EPOCH).days, (after - EPOCH).days - 1


def rebuild_month(conn: Connection, month: int) -> None:
    """The monthly cells of ``month`` as sums of its daily ones, in the caller's transaction."""
    d = insight_daily.c
    first, last = day_range(month)
    keys = [d[k] for k in DIMENSIONS]
    sums = select(literal(month), *keys, *(func.sum(d[x]) for x in MEASURES))
    query = sums.where(d.day >= first, d.day <= last).group_by(*keys)
    conn.execute(delete(insight_monthly).where(insight_monthly.c.month == month))
    conn.execute(insert(insight_monthly).from_select(["month", *DIMENSIONS, *MEASURES], query))


def rebuild(engine: Engine, first: int, last: int, now: int, *, full: bool = False) -> None:
    """Rebuild days ``first``..``last`` a week per transaction, then their months one each; with
    ``full``, also drop cells outside that range. Short transactions: on SQLite the other writers
    (audit events above all) wait for one week's rebuild at most, never for the whole.

    Each transaction first locks the refresh row, so on PostgreSQL two processes rebuilding the same
    days take turns instead of inserting the same cells twice (SQLite serialises writers anyway)."""
    lock = select(insight_refresh.c.id).where(insight_refresh.c.id == 1).with_for_update()
    if full:
        with writing(engine) as conn:
            conn.execute(lock)
            d, m = insight_daily.c, insight_monthly.c
            conn.execute(delete(insight_daily).where((d.day < first) | (d.day > last)))
            conn.execute(delete(insight_monthly).where((m.month < month_of(first)) | (m.month > month_of(last))))
    for start in range(first, last + 1, WEEK):
        with writing(engine) as conn:
            conn.execute(lock)
            rebuild_days(conn, start, min(last, start + WEEK - 1), now)
    for month in range(month_of(first), month_of(last) + 1):
        with writing(engine) as conn:
            conn.execute(lock)
            rebuild_month(conn, month)
    if full and engine.dialect.name == "postgresql":
        # fresh statistics for the planner after replacing every cell (autovacuum would, later)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE insight_daily"))
            conn.execute(text("ANALYZE insight_monthly"))


__all__ = ["ACK", "NO_AREA", "RES", "month_of", "rebuild"]
