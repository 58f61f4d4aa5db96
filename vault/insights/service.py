"""Insights for analysts: one query, one audited, budgeted, differentially private release.

Order, failing closed: check the query -> enough budget left? -> bring the rollups up to date ->
read exact sums -> add noise (vault/insights/release.py) -> in ONE transaction: spend the budget
(atomic), store the release, append the audit event ``insights.query``. If the budget cannot be
spent or the event cannot be written, nothing is returned. A refusal is audited too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event
from vault.errors import NotFound, Refused, ValidationFailed
from vault.insights import budget as ledger
from vault.insights import rollup
from vault.insights.budget import Budget
from vault.insights.query import Query, aggregate, now_s
from vault.insights.release import Release, release
from vault.insights.tables import insight_refresh, insight_releases
from vault.interactions.facts import interaction_facts
from vault.settings import Settings

ACTION = "insights.query"
# Below this the noise swamps every count (the threshold passes millions) and its scale overflows.
MIN_EPSILON = 0.01


@dataclass(frozen=True)
class Answer:
    """A stored release as the analyst sees it."""

    id: str
    created_s: int
    query: dict[str, Any]
    epsilon: float
    delta: float
    result: dict[str, Any]
    budget: Budget | None = None

    def public(self) -> dict[str, Any]:
        """The answer's JSON form."""
        out = {"release_id": self.id, "query": self.query, "epsilon_spent": self.epsilon, "delta": self.delta}
        out |= self.result
        if self.budget is not None:
            out["budget"] = self.budget.public()
        return out


class InsightService:
    """Budgeted, audited, differentially private aggregates of interaction_facts."""

    def __init__(self, engine: Engine, audit: AuditLog, settings: Settings, clock: Callable[[], int] = now_s) -> None:
        self.engine, self.audit, self.settings, self.clock = engine, audit, settings, clock

    def budget(self, subject: str) -> Budget:
        """The analyst's budget now (reading it spends nothing)."""
        s = self.settings
        with self.engine.connect() as conn:
            return ledger.current(conn, subject, s.insights_budget_epsilon, self.clock(), s.insights_budget_period)

    def epsilon(self, asked: float | None) -> float:
        """The epsilon a query spends: asked for, or the default; within the configured maximum."""
        value = self.settings.insights_query_epsilon if asked is None else asked
        top = self.settings.insights_max_query_epsilon
        if not MIN_EPSILON <= value <= top:
            raise ValidationFailed({"epsilon": f"must be from {MIN_EPSILON:g} to {top:g}"})
        return value

    def query(self, actor: Actor, query: Query, epsilon: float | None = None) -> Answer:
        """Release the query's aggregates with noise, spending epsilon from the actor's budget."""
        query.check()
        eps, s = self.epsilon(epsilon), self.settings
        before = self.budget(actor.subject)
        if before.remaining + ledger.SLACK < eps:
            self._refused(actor, ledger.exhausted(before, eps))
        if s.insights_refresh_seconds == 0:
            self.refresh()  # rollups rebuilt before every query (small stores, tests); else Refresher
        with self.engine.connect() as conn:
            groups = aggregate(conn, query)
        out = release(query, groups, eps, s.insights_k, s.insights_delta)
        return self._record(actor, query, out)

    def _record(self, actor: Actor, query: Query, out: Release) -> Answer:
        s, now, rid = self.settings, self.clock(), str(uuid.uuid4())
        result = {
            "columns": out.columns,
            "rows": out.rows,
            "k": s.insights_k,
            "threshold": out.threshold,
            "suppressed_groups": out.suppressed_groups,
        }
        cost = round(out.cost.epsilon, 9)
        try:
            with self.audit.transaction() as conn:
                spent = ledger.charge(
                    conn, actor.subject, cost, s.insights_budget_epsilon, now, s.insights_budget_period
                )
                conn.execute(
                    insert(insight_releases).values(
                        id=rid,
                        subject=actor.subject,
                        agency=actor.agency,
                        created_s=now,
                        epsilon=cost,
                        delta=out.cost.delta,
                        query=json.dumps(query.params()),
                        result=json.dumps(result),
                    )
                )
                event = Event(ACTION, reason=f"release {rid}; epsilon {cost:g}; by {','.join(query.by) or '-'}")
                self.audit.append(conn, actor, [event])
        except Refused as exc:
            self._refused(actor, exc)
        return Answer(rid, now, query.params(), cost, out.cost.delta, result, spent)

    def _refused(self, actor: Actor, exc: Refused) -> None:
        """Audit a refused query, then refuse it."""
        self.audit.record(actor, Event(ACTION, outcome="denied", reason=exc.reason))
        raise exc

    def stored(self, subject: str, release_id: str) -> Answer:
        """One of the analyst's own releases, again (free: it is already public to them)."""
        r = insight_releases.c
        with self.engine.connect() as conn:
            row = conn.execute(select(insight_releases).where(r.id == release_id, r.subject == subject)).first()
        if row is None:
            raise NotFound("no such release of yours")
        return _answer(row)

    def recent(self, subject: str, limit: int = 20) -> list[Answer]:
        """The analyst's latest releases, newest first."""
        r = insight_releases.c
        query = select(insight_releases).where(r.subject == subject).order_by(r.created_s.desc(), r.id).limit(limit)
        with self.engine.connect() as conn:
            return [_answer(row) for row in conn.execute(query)]

    def refresh(self, *, full: bool = False) -> bool:
        """Rebuild the rollups' recent days if the last refresh is older than the setting (every
        day on the first refresh of a UTC day, or with ``full``). The refresh is claimed by moving
        the one refresh row's time forward (compare and set): of several processes, one does it."""
        s, now = self.settings, self.clock()
        r = insight_refresh.c
        with writing(self.engine) as conn:
            old = conn.scalar(select(r.refreshed_s).where(r.id == 1))
            if old is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(insight_refresh).values(id=1, refreshed_s=now))
                except IntegrityError:
                    return False
                full = True
            else:
                if not full and old > now - s.insights_refresh_seconds:
                    return False
                claim = update(insight_refresh).where(r.id == 1, r.refreshed_s == old).values(refreshed_s=now)
                if conn.execute(claim).rowcount != 1:
                    return False
                full = full or int(old) // rollup.DAY != now // rollup.DAY
            low = conn.scalar(select(func.min(interaction_facts.c.created_s))) if full else None
        today = now // rollup.DAY
        first = int(low) // rollup.DAY if low is not None else today - s.insights_refresh_days
        rollup.rebuild(self.engine, min(first, today), today, now, full=full)
        return True


def _answer(row: Any) -> Answer:
    return Answer(row.id, int(row.created_s), json.loads(row.query), row.epsilon, row.delta, json.loads(row.result))
