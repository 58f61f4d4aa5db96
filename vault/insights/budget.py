"""The per-analyst privacy budget, kept in the database (OpenDP's accountant lives in memory only).

Each analyst may spend ``limit`` epsilon per budget period (a UTC day, ISO week or month, by
setting); the next period starts afresh. Spending is one conditional UPDATE (``spent + cost <=
limit``), so two requests in two processes cannot both take the last of a budget: the database
serialises the row, and the loser's condition fails. A missing row is inserted under a savepoint;
if another request inserted it first, the update is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from vault.errors import Refused
from vault.insights.tables import insight_budget

SLACK = 1e-9  # float sums of shares may exceed a limit they exactly meet by an ulp


@dataclass(frozen=True)
class Budget:
    """An analyst's budget in the current period."""

    limit: float
    spent: float
    period_start: int
    renews_at: int

    @property
    def remaining(self) -> float:
        """What is left to spend (never negative)."""
        return max(0.0, round(self.limit - self.spent, 9))

    def public(self) -> dict[str, object]:
        """As shown to the analyst."""
        return {
            "epsilon_limit": self.limit,
            "epsilon_spent": round(self.spent, 6),
            "epsilon_remaining": round(self.remaining, 6),
            "renews_at": datetime.fromtimestamp(self.renews_at, UTC).isoformat(),
        }


def period_bounds(now: int, period: str) -> tuple[int, int]:
    """Start and end (epoch seconds) of the budget period holding ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


def current(conn: Connection, subject: str, limit: float, now: int, period: str) -> Budget:
    """The analyst's budget now."""
    start, end = period_bounds(now, period)
    b = insight_budget.c
    spent = conn.scalar(select(b.spent).where(b.subject == subject, b.period_start == start))
    return Budget(limit, float(spent or 0.0), start, end)


def charge(conn: Connection, subject: str, cost: float, limit: float, now: int, period: str) -> Budget:
    """Spend ``cost`` of the analyst's budget in the caller's transaction, or raise Refused."""
    start, end = period_bounds(now, period)
    b = insight_budget.c
    for _ in range(2):
        done = conn.execute(
            update(insight_budget)
            .where(b.subject == subject, b.period_start == start, b.spent + cost <= limit + SLACK)
            .values(spent=b.spent + cost)
        )
        if done.rowcount == 1:
            return current(conn, subject, limit, now, period)
        if conn.scalar(select(b.spent).where(b.subject == subject, b.period_start == start)) is not None:
            break  # the row exists: there is not enough left
        if cost > limit + SLACK:
            break
        try:
            with conn.begin_nested():
                conn.execute(insert(insight_budget).values(subject=subject, period_start=start, spent=cost))
            return Budget(limit, cost, start, end)
        except IntegrityError:
            continue  # another request created the row first: try the update again
    raise exhausted(current(conn, subject, limit, now, period), cost)


def exhausted(budget: Budget, cost: float) -> Refused:
    """The refusal of a query whose cost exceeds what is left."""
    return Refused(
        "privacy-budget-exhausted",
        f"this query costs epsilon {cost:g}; {budget.remaining:g} of {budget.limit:g} is left until the budget renews",
        epsilon_remaining=f"{budget.remaining:g}",
        renews_at=datetime.fromtimestamp(budget.renews_at, UTC).isoformat(),
    )
