"""Insights: small groups suppressed, a differencing pair reveals nobody, rollups add up (issue 15)."""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.insights_helpers import START, day, facts, fill
from tests.support.insights_world import ANALYST, insight_settings, open_insights
from vault.audit.review import EventFilter, events
from vault.demo import profile
from vault.errors import Refused
from vault.insights import noise
from vault.insights.query import Groups, Query, aggregate
from vault.insights.release import release, shares
from vault.insights.service import InsightService
from vault.interactions.facts import interaction_facts
from vault.runtime import Vault

LONE = "district-99"  # an area with a single interaction in it: the person the attacker wants


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Vault, InsightService]]:
    vault, service = open_insights(insight_settings(request, tmp_path, "sqlite"))
    fill(vault.data_engine, facts(6000))
    planted = next(facts(1, seed=99, area=LONE, agency="public-works", service="pothole"))
    fill(vault.data_engine, [planted])
    yield vault, service
    vault.close()


def _count(rows: list[dict[str, object]], **key: str) -> int | None:
    found = [r["count"] for r in rows if all(r.get(k) == v for k, v in key.items())]
    return int(str(found[0])) if found else None


def test_group_below_k_is_suppressed_and_counted_not_named(world: tuple[Vault, InsightService]) -> None:
    _, service = world
    answer = service.query(ANALYST, Query(("area",), None, day("2026-03-01"), day("2026-06-30")))
    rows, result = answer.result["rows"], answer.result
    assert {r["area"] for r in rows} == {f"district-{i:02d}" for i in range(1, 11)}  # ~600 each: all shown
    assert _count(rows, area=LONE) is None  # one interaction: below k, never shown
    assert result["threshold"] >= result["k"] == 10
    assert all(int(r["count"]) >= result["threshold"] for r in rows)  # decided on the noisy count
    assert "district-99" not in str(result)  # the suppressed group's key appears nowhere in the answer


def test_differencing_pair_is_answered_with_noise_and_budget_refuses_repeats(
    world: tuple[Vault, InsightService],
) -> None:
    """Agency total minus the sum over its areas would isolate the planted interaction if both were
    exact; here each answer carries fresh noise, the lone area is never shown, and repeating the
    pair to average the noise away runs out of budget."""
    _, service = world
    window = (day("2026-03-01"), day("2026-06-30"))
    totals, by_area = [], []
    refused = None
    for _ in range(20):
        try:
            total = service.query(ANALYST, Query(("agency",), None, *window, ()), 1.0)
            split = service.query(ANALYST, Query(("agency", "area"), None, *window, ()), 1.0)
        except Refused as exc:
            refused = exc
            break
        totals.append(_count(total.result["rows"], agency="public-works"))
        areas = [r for r in split.result["rows"] if r["agency"] == "public-works"]
        assert LONE not in {r["area"] for r in areas}
        by_area.append(sum(int(r["count"]) for r in areas))
    assert refused is not None and refused.reason == "privacy-budget-exhausted"
    assert len(totals) == 5  # budget 10, two queries of epsilon 1 a pair
    exact = _exact(world[0], agency="public-works")
    assert len(set(totals)) > 1 and len(set(by_area)) > 1, "answers must not repeat exactly: they are noisy"
    assert any(t != exact for t in totals)
    assert service.budget(ANALYST.subject).remaining == 0


def _exact(vault: Vault, **where: str) -> int:
    f = interaction_facts.c
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).where(*(f[k] == v for k, v in where.items()))) or 0)


def test_one_interaction_more_or_less_barely_moves_the_answer() -> None:
    """The mechanism itself: released counts of two neighbouring data sets (with and without one
    interaction) are so alike that the best guess of which one was used is little better than a coin."""
    query = Query(("agency",), None, day("2026-03-01"), day("2026-03-31"), ())
    with_one: Groups = {("public-works",): {"n": 1001}}
    without: Groups = {("public-works",): {"n": 1000}}
    a = [release(query, with_one, 1.0, 10, 1e-7).rows[0]["count"] for _ in range(300)]
    b = [release(query, without, 1.0, 10, 1e-7).rows[0]["count"] for _ in range(300)]
    best = max((sum(x > t for x in a) + sum(y <= t for y in b)) / 600 for t in range(990, 1012))
    # epsilon e on the counts: no test tells them apart with accuracy above e^e/(1+e^e) (0.71 for
    # the 0.9 a count-only query gives its counts); 0.06 allows for 600 samples
    eps = shares(query, 1.0)["count"]
    assert eps == pytest.approx(0.9)
    assert best < math.exp(eps) / (1 + math.exp(eps)) + 0.06, best
    assert len(Counter(a)) > 5 and len(Counter(b)) > 5


def test_threshold_keeps_a_lone_interaction_hidden_with_delta_bound() -> None:
    threshold = noise.threshold_for(0.4, 10, 1e-7)
    assert threshold > 10  # k alone would let a lone interaction show far too often
    shown = [noise.threshold_counts({"lone": 1, "crowd": 500}, 0.4, 10, 1e-7)[0] for _ in range(200)]
    assert all("lone" not in s and "crowd" in s for s in shown)


def test_rollups_add_up_to_the_facts(world: tuple[Vault, InsightService]) -> None:
    """Whole months from the monthly rollup plus edge days from the daily one equal a direct count."""
    vault, service = world
    service.refresh(full=True)
    for start, end, period in [("2026-03-05", "2026-05-20", None), ("2026-03-01", "2026-05-31", "month")]:
        query = Query(("agency",), period, day(start), day(end))
        with vault.data_engine.connect() as conn:
            groups = aggregate(conn, query)
        f = interaction_facts.c
        lo, hi = _epoch(day(start)), _epoch(day(end)) + 86400
        with vault.data_engine.connect() as conn:
            direct: dict[str, int] = dict(
                conn.execute(
                    select(f.agency, func.count()).where(f.created_s >= lo, f.created_s < hi).group_by(f.agency)
                ).all()
            )
        summed: Counter[str] = Counter()
        for key, sums in groups.items():
            summed[key[0]] += sums["n"]
        assert dict(summed) == direct


def _epoch(d: date) -> int:
    return int(datetime.combine(d, time(), UTC).timestamp())


def test_statistics_survive_a_citizens_erasure(world: tuple[Vault, InsightService]) -> None:
    """The facts hold no citizen link, so erasing a citizen leaves every aggregate as it was."""
    vault, service = world
    service.refresh(full=True)
    query = Query(("agency", "area"), "month", day("2026-03-01"), day("2026-05-31"))
    with vault.data_engine.connect() as conn:
        before = aggregate(conn, query)
    citizen = vault.profiles.create(profile(7), "civil-registry")
    vault.profiles.erase(citizen)
    service.refresh(full=True)
    with vault.data_engine.connect() as conn:
        after = aggregate(conn, query)
    assert after == before and sum(v["n"] for v in after.values()) == 6001


def test_insights_code_draws_no_noise_of_its_own() -> None:
    """Noise only from OpenDP (vault/insights/noise.py): no module of insights imports random or numpy."""
    root = Path(__file__).resolve().parents[2] / "vault" / "insights"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] in {"random", "numpy", "secrets"}], path


def test_released_answer_is_recorded_with_its_cost_and_audited(world: tuple[Vault, InsightService]) -> None:
    vault, service = world
    answer = service.query(ANALYST, Query(("channel",), "month", day("2026-03-01"), day("2026-04-30")), 0.5)
    assert answer.epsilon == pytest.approx(0.5)
    assert service.stored(ANALYST.subject, answer.id).result == answer.result
    assert service.budget(ANALYST.subject).spent == pytest.approx(0.5)
    found, _ = events(vault.data_engine, EventFilter(action="insights.query"))
    assert found and answer.id in (found[-1].reason or "") and found[-1].actor == ANALYST.subject
    assert START  # the facts were generated from START (tests/support/insights_helpers.py)
