"""Failed authentications are limited per client address: past the limit they get 429 and one audit
event per throttled spell, so bad tokens cannot make the vault write without bound. Callers who
authenticate are not held back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.security import issuing
from api.security.auth import FailureThrottle
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


def test_failures_past_the_limit_get_429_and_one_event(env: tuple[TestClient, Vault, AppSettings]) -> None:
    client, vault, settings = env
    for _ in range(LIMIT):
        assert client.get("/v1/agencies", headers=BAD).status_code == 401
    audited = _events(vault)
    assert audited == LIMIT
    throttled = client.get("/v1/agencies", headers=BAD)
    assert throttled.status_code == 429
    assert throttled.headers["content-type"].startswith("application/problem+json")
    assert throttled.json()["type"].endswith("/too-many-failed-authentications")
    assert int(throttled.headers["Retry-After"]) >= 1
    for _ in range(3):
        assert client.get("/v1/agencies", headers=BAD).status_code == 429
    assert _events(vault, "auth.throttled") == 1  # one event for the spell, none per refusal
    assert _events(vault) == audited + 1
    token = issuing.issue(vault.signing, settings.issuer, settings.audience, "admin@vault", "admin", "vault", 600)
    ok = client.get("/v1/agencies", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200  # the same address, authenticated: not held back


def test_a_new_spell_is_recorded_again_after_a_quiet_minute() -> None:
    now = [0.0]
    throttle = FailureThrottle(2, clock=lambda: now[0])
    assert throttle.refuse("a") == (0.0, False) and throttle.refuse("a") == (0.0, False)
    wait, starts = throttle.refuse("a")
    assert wait > 0 and starts
    assert throttle.refuse("a")[1] is False  # same spell
    assert throttle.refuse("b") == (0.0, False)  # another address has its own budget
    now[0] += 30  # one failure's worth refilled (2 a minute)
    assert throttle.refuse("a")[0] == 0.0
    now[0] += 0.1
    wait, starts = throttle.refuse("a")
    assert wait > 0 and not starts  # throttled again within the minute: the same spell
    now[0] += FailureThrottle.SPELL_SECONDS + 60
    assert throttle.refuse("a") == (0.0, False)
    assert throttle.refuse("a") == (0.0, False)
    wait, starts = throttle.refuse("a")
    assert wait > 0 and starts  # a minute and more since the last throttled failure: a new spell
