"""Refusals are audited one by one up to a budget per caller (the client address before
authentication); past it they are refused alike and identical ones are counted into one aggregate
event, so bad tokens cannot make the vault write without bound while the log still counts every
refusal. No answer changes. Time is an injected clock (api/security/limits.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.security import issuing, limits
from api.security.limits import WINDOW_SECONDS, RateLimiter, Refusal, RefusalBudget
from api.settings import AppSettings
from vault.audit.tables import audit_events
from vault.demo_registry import seed_registry
from vault.runtime import Vault, init_vault

LIMIT = 5
BAD = {"Authorization": "Bearer not-a-token"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Vault, AppSettings]]:
    settings = AppSettings(data_dir=tmp_path, keyring_scrypt_n=2**10, auth_failures_per_minute=LIMIT)
    vault = init_vault(settings)
    seed_registry(vault.registry)
    with TestClient(create_app(settings, vault)) as client:
        yield client, vault, settings


def _events(vault: Vault, action: str | None = None, outcome: str = "denied") -> int:
    query = select(func.count()).select_from(audit_events).where(audit_events.c.outcome == outcome)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _aggregated(vault: Vault) -> list[str]:
    with vault.data_engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.reason).where(audit_events.c.reason.like("% more identical refusals %"))
        )
        return [r.reason for r in rows]


def test_failures_past_the_limit_are_refused_alike_and_counted_in_one_event(
    env: tuple[TestClient, Vault, AppSettings],
) -> None:
    client, vault, settings = env
    first = client.get("/v1/agencies", headers=BAD)
    for _ in range(LIMIT - 1):
        assert client.get("/v1/agencies", headers=BAD).status_code == 401
    audited = _events(vault)
    assert audited == LIMIT
    for _ in range(4):
        late = client.get("/v1/agencies", headers=BAD)
        assert late.status_code == 401  # the same answer: a client whose token expired refreshes it
        assert late.json()["type"] == first.json()["type"]
        assert late.headers.get("www-authenticate") == first.headers.get("www-authenticate")
    assert _events(vault) == audited  # counted, not written one by one
    client.app.state.summariser.flush(force=True)  # type: ignore[attr-defined]  # as a clean stop does
    assert [r.split(" ", 1)[0] for r in _aggregated(vault)] == ["4"]
    assert _events(vault, "agencies.read") == audited + 1
    token = issuing.issue(vault.signing, settings.issuer, settings.audience, "admin@vault", "admin", "vault", 600)
    ok = client.get("/v1/agencies", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200  # the same address, authenticated


def test_client_login_failures_are_budgeted_and_counted_like_other_refusals(
    env: tuple[TestClient, Vault, AppSettings],
) -> None:
    client, vault, _ = env
    for i in range(LIMIT + 3):
        refused = client.post(
            "/v1/token", data={"grant_type": "client_credentials", "client_id": f"x{i}", "client_secret": "y"}
        )
        assert refused.status_code == 401
    assert _events(vault, "token.issue") == LIMIT
    client.app.state.summariser.flush(force=True)  # type: ignore[attr-defined]
    # one aggregate for three made-up client ids: a claimed identity does not make refusals distinct
    assert [r.split(" ", 1)[0] for r in _aggregated(vault)] == ["3"]


def test_an_aggregate_is_due_a_window_after_its_first_refusal_and_counts_every_one() -> None:
    now = [1000.0]
    budget = RefusalBudget(2, clock=lambda: now[0], wall=lambda: now[0])
    bad = Refusal(401, "agencies.read", "malformed", "anonymous", "-", "-")
    assert budget.admit("a", bad) and budget.admit("a", bad)
    assert not budget.admit("a", bad) and not budget.admit("a", bad)  # counted
    assert budget.admit("b", bad)  # another caller has its own budget
    now[0] += 1
    assert not budget.admit("a", bad)
    assert budget.due() == []  # the spell goes on
    now[0] += WINDOW_SECONDS
    (aggregate,) = budget.due()
    assert (aggregate.count, aggregate.first, aggregate.last) == (3, 1000.0, 1001.0)
    who, event = aggregate.event()
    assert who.subject == "anonymous" and event.action == "agencies.read" and event.outcome == "denied"
    assert event.reason is not None and event.reason.startswith("3 more identical refusals ")
    assert budget.due() == []  # written once
    assert budget.admit("a", bad) and budget.admit("a", bad) and not budget.admit("a", bad)
    assert [a.count for a in budget.due(force=True)] == [1]  # a clean stop writes what is pending


def test_a_full_limiter_forgets_the_least_recently_seen_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its capacity a limiter forgets the clients seen longest ago, one by one: a busy client
    keeps its spent budget (a flood of new keys cannot reset it)."""
    monkeypatch.setattr(limits, "TRACKED_KEYS", 3)
    limiter = RateLimiter(2, clock=lambda: 0.0)
    assert limiter.take("busy") == 0 and limiter.take("busy") == 0
    assert limiter.take("busy") > 0  # spent
    for key in ("a", "b"):
        limiter.take(key)
    assert limiter.take("busy") > 0  # seen last: kept
    for key in ("c", "d", "e"):
        limiter.take(key)  # each new key now pushes out the one seen longest ago
    assert limiter.take("busy") == 0  # forgotten after three newer keys: a fresh budget
    assert limiter.take("e") == 0 and limiter.take("e") > 0  # "e" was kept with one spent
