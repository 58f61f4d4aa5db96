"""Failed authentications are audited one by one up to a budget per client address; past it they are
refused alike and one audit event stands for each throttled spell, so bad tokens cannot make the
vault write without bound. No answer changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.security import auth, issuing
from api.security.auth import FailureThrottle, RateLimiter
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


def test_failures_past_the_limit_are_refused_alike_with_one_event(env: tuple[TestClient, Vault, AppSettings]) -> None:
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
    assert _events(vault, "auth.throttled") == 1  # one event for the spell, none per refusal
    assert _events(vault) == audited + 1
    token = issuing.issue(vault.signing, settings.issuer, settings.audience, "admin@vault", "admin", "vault", 600)
    ok = client.get("/v1/agencies", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200  # the same address, authenticated


def test_client_logins_stay_audited_one_by_one(env: tuple[TestClient, Vault, AppSettings]) -> None:
    client, vault, _ = env
    for _ in range(LIMIT + 3):
        refused = client.post(
            "/v1/token", data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
        )
        assert refused.status_code == 401
    assert _events(vault, "token.issue") == LIMIT + 3
    assert _events(vault, "auth.throttled") == 0


def test_a_new_spell_is_recorded_again_after_a_quiet_minute() -> None:
    now = [0.0]
    throttle = FailureThrottle(2, clock=lambda: now[0])
    assert throttle.refuse("a") == (False, False) and throttle.refuse("a") == (False, False)
    assert throttle.refuse("a") == (True, True)
    assert throttle.refuse("a") == (True, False)  # same spell
    assert throttle.refuse("b") == (False, False)  # another address has its own budget
    now[0] += 30  # one failure's worth refilled (2 a minute)
    assert throttle.refuse("a") == (False, False)
    now[0] += 0.1
    assert throttle.refuse("a") == (True, False)  # throttled again within the minute: the same spell
    now[0] += FailureThrottle.SPELL_SECONDS + 60
    assert throttle.refuse("a") == (False, False)
    assert throttle.refuse("a") == (False, False)
    assert throttle.refuse("a") == (True, True)  # a minute and more since the last throttled failure


def test_a_full_limiter_forgets_the_least_recently_seen_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its capacity a limiter forgets the clients seen longest ago, one by one: a busy client
    keeps its spent budget (a flood of new keys cannot reset it)."""
    monkeypatch.setattr(auth, "TRACKED_KEYS", 3)
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
