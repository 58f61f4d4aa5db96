"""Limits on refusals and on callers before authentication (issue 19, findings 3, 4, 8 and 16).

* ``/v1/token``: a correct secret always gets its token; wrong secrets are limited per (client,
  source) and per source, and many wrong secrets for one client raise a lockout-pressure event that
  the compliance flags show.
* Refusals (401, 403, 429) are rate-limited and their audit is budgeted per caller: past the budget,
  identical refusals are counted into one aggregate event, so the log still counts every refusal.
* Every source address is rate-limited before its token is even looked at.

Time is an injected clock throughout; nothing here measures a duration. Everyone is invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.security.limits import Limits
from tests.support.api_world import PROBLEM, World, open_world, problem

AGGREGATE = re.compile(r"^(\d+) more identical refusals ")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


class Clock:
    """A hand-moved clock: ``now`` seconds, for both the limiters and the times written in events."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def limited(w: World, clock: Clock | None = None, **settings: Any) -> FastAPI:
    """An app on the world's vault with other limits (no lifespan: the world's app owns the vault)."""
    app_settings = w.settings.model_copy(update=settings)
    app = create_app(app_settings, w.vault)
    if clock is not None:
        app.state.guard.limits = Limits.from_settings(app_settings, clock=clock, wall=clock)
    return app


def at(app: FastAPI, address: str) -> TestClient:
    """A client of ``app`` whose requests come from ``address``."""
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


def refusals_counted(events: list[dict[str, Any]]) -> int:
    """How many refusals the events stand for: one each, or the count an aggregate event states."""
    total = 0
    for e in events:
        match = AGGREGATE.match(e["reason"] or "")
        total += int(match.group(1)) if match else 1
    return total


def login(client: TestClient, client_id: str, secret: str) -> Any:
    return client.post(
        "/v1/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )


# -- finding 3: /v1/token --------------------------------------------------------------------------
def test_wrong_secrets_from_elsewhere_never_block_the_owners_correct_secret(world: World) -> None:
    w = world
    tax = w.apps["tax-office"]
    assert tax.secret is not None
    app = limited(w, rate_limit_per_minute=5, token_failures_per_minute=3)
    attacker = at(app, "203.0.113.66")
    answers = [login(attacker, tax.client_id, "wrong-secret").status_code for _ in range(8)]
    owner = at(app, "198.51.100.7")
    assert login(owner, tax.client_id, tax.secret).status_code == 200
    assert answers == [401] * 3 + [429] * 5  # the attacker's failures are limited at their source
    assert login(attacker, tax.client_id, "wrong-secret").headers["retry-after"].isdigit()
    assert login(attacker, tax.client_id, tax.secret).status_code == 200  # a correct secret is always served
    assert login(owner, tax.client_id, "typo").status_code == 401  # the owner's own failures are counted apart


def test_many_wrong_secrets_for_one_client_from_many_sources_raise_a_lockout_pressure_flag(world: World) -> None:
    w = world
    tax = w.apps["tax-office"]
    app = limited(w, token_pressure_per_minute=6)
    for i in range(8):
        assert login(at(app, f"203.0.113.{i + 1}"), tax.client_id, "wrong-secret").status_code == 401
    pressure = w.events(action="token.lockout-pressure")
    assert [(e["actor"], e["agency"]) for e in pressure] == [(tax.client_id, "tax-office")]  # one per spell
    assert "from 7 sources" in pressure[0]["reason"]
    flags = w.client.get("/v1/audit/flags", headers=w.compliance).json()
    assert [f["actor"] for f in flags if f["rule"] == "lockout-pressure"] == [tax.client_id]
    assert login(at(app, "198.51.100.7"), tax.client_id, str(tax.secret)).status_code == 200


# -- findings 4 and 8: refusals are limited, budgeted and aggregated, 429s audited -----------------
def test_refusals_for_a_role_not_held_are_rate_limited_and_every_one_is_counted_in_the_log(world: World) -> None:
    w = world
    clock = Clock()
    app = limited(w, clock, rate_limit_per_minute=5, auth_failures_per_minute=3)
    client = at(app, "198.51.100.20")
    posing = w.token("caseworker@tax-office", "registrar", "civil-registry")  # a role this subject does not hold
    answers = [client.get("/v1/agencies", headers=posing).status_code for _ in range(8)]
    assert answers == [403] * 5 + [429] * 3
    mine = [e for e in w.events(actor="caseworker@tax-office") if e["outcome"] == "denied"]
    assert len(mine) == 3  # the budget: the rest are counted, not written one by one
    app.state.summariser.flush()
    assert len([e for e in w.events(actor="caseworker@tax-office") if e["outcome"] == "denied"]) == 3  # spell on
    clock.now += 61  # no further request: the timer's flush writes the aggregates
    app.state.summariser.flush()
    mine = [e for e in w.events(actor="caseworker@tax-office") if e["outcome"] == "denied"]
    assert refusals_counted(mine) == 8
    aggregates = sorted(e["reason"] for e in mine if AGGREGATE.match(e["reason"]))
    assert len(aggregates) == 2 and "rate-limited" in aggregates[1] and "role-not-held" in aggregates[0]


def test_an_aggregate_is_written_by_the_next_refusal_after_the_spell(world: World) -> None:
    w = world
    clock = Clock()
    app = limited(w, clock, auth_failures_per_minute=2)
    client = at(app, "198.51.100.21")
    for _ in range(5):
        assert client.get("/v1/agencies", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    clock.now += 61
    assert client.get("/v1/agencies", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    anonymous = [e for e in w.events(action="agencies.read") if e["actor"] == "anonymous"]
    assert refusals_counted(anonymous) == 6
    assert sum(1 for e in anonymous if AGGREGATE.match(e["reason"])) == 1


def test_a_429_is_audited(world: World) -> None:
    w = world
    app = limited(w, rate_limit_per_minute=2, token_source_failures_per_minute=2)
    client = at(app, "198.51.100.22")
    for _ in range(2):
        assert client.get("/v1/agencies", headers=w.admin).status_code == 200
    over = client.get("/v1/agencies", headers=w.admin)
    problem(over, 429)
    assert w.refusal_event(over)["action"] == "agencies.read"
    for _ in range(2):
        login(client, "no-such-client", "wrong")
    over = login(client, "no-such-client", "wrong")
    problem(over, 429)
    assert w.refusal_event(over)["action"] == "token.issue"


# -- finding 16: every source is limited before authentication ------------------------------------
def test_a_source_is_rate_limited_before_its_token_is_looked_at(world: World) -> None:
    w = world
    app = limited(w, source_requests_per_minute=5)
    flood = at(app, "192.0.2.10")
    bad = {"Authorization": "Bearer not-a-token"}
    assert [flood.get("/v1/agencies", headers=bad).status_code for _ in range(5)] == [401] * 5
    refused = flood.get("/v1/agencies", headers=w.admin)
    assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()
    assert refused.headers["content-type"].startswith(PROBLEM) and refused.json()["reason"] == "source-rate"
    assert flood.get("/healthz").status_code == 429
    assert at(app, "192.0.2.11").get("/v1/agencies", headers=w.admin).status_code == 200


def test_an_ipv6_source_is_limited_by_its_64(world: World) -> None:
    w = world
    app = limited(w, source_requests_per_minute=3)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        assert at(app, host).get("/healthz").status_code == 200
    assert at(app, "2001:db8:1:2::4").get("/healthz").status_code == 429
    assert at(app, "2001:db8:1:3::1").get("/healthz").status_code == 200
