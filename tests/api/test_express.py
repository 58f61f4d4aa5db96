"""The express lane (api/express.py) for small grant pages: it answers exactly what the FastAPI route
answers, serves only successes, and hands everything else over unchanged: nothing spent, audited or
charged twice.

Each test compares the express app with an app on the same vault whose lane is off
(``express_reads=False``), and tells which of them served by counting the route's calls.
Every person is invented (tests/support/api_world.py).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

import api.express
import api.routes.grants as grant_routes
from api.app import create_app
from api.concurrency import run_short
from api.routes.grants import page_body
from api.schemas import GrantData
from tests.support.api_world import BARNABY, ODILE, World, open_world, person
from vault.grants.model import Grant
from vault.grants.service import QUICK_PAGE


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Grant ids of the reads the FastAPI route served (the lane never calls it)."""
    calls: list[str] = []
    original = run_short

    async def counted(request: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[1]))
        return await original(request, call, *args, **kwargs)

    monkeypatch.setattr(grant_routes, "run_short", counted)
    return calls


def plain(w: World, **settings: Any) -> TestClient:
    """A client of an app on the same vault with the lane off (no lifespan: the world's app owns the vault)."""
    return TestClient(create_app(w.settings.model_copy(update={"express_reads": False, **settings}), w.vault))


def express(w: World, **settings: Any) -> TestClient:
    """A client of an app on the same vault with the lane on and other settings."""
    return TestClient(create_app(w.settings.model_copy(update=settings), w.vault))


def same(a: Response, b: Response) -> None:
    """Equal answers: status, headers and body, but for each request's own id."""
    assert a.status_code == b.status_code, (a.text, b.text)
    strip = {"x-request-id", "date"}
    assert [(k, v) for k, v in a.headers.items() if k not in strip] == [
        (k, v) for k, v in b.headers.items() if k not in strip
    ]
    if a.headers["content-type"].startswith("application/problem+json"):
        assert {**a.json(), "request_id": None} == {**b.json(), "request_id": None}
    else:
        assert a.content == b.content


def events_of(w: World, response: Response) -> list[dict[str, Any]]:
    request_id = response.headers["x-request-id"]
    return [e for e in w.events() if e["request_id"] == request_id]


def test_a_small_page_is_served_by_the_lane_with_the_routes_exact_answer_and_audit(
    world: World, route_calls: list[str]
) -> None:
    w = world
    ids = sorted([w.citizen(ODILE), w.citizen(BARNABY)])
    fields = ["given_name", "income", "national_id"]
    grant = w.granted(w.tax, citizen_ids=ids, purpose="tax-assessment", fields=fields, max_uses=20)
    off = plain(w)
    for params in ({}, {"limit": 1}, {"limit": 1, "after": ids[0]}, {"after": ids[0].upper()}):
        fast = w.read(w.tax, grant["id"], **params)
        assert fast.status_code == 200, fast.text
        assert route_calls == [], f"the route served {params}"
        slow = off.get(f"/v1/grants/{grant['id']}/data", params=params, headers=w.tax)
        assert route_calls == [grant["id"]]
        route_calls.clear()
        same(fast, slow)
        reads = events_of(w, fast)  # one allowed event per citizen on the page, under this request's id
        expected = [r["citizen_id"] for r in fast.json()["records"]]
        assert sorted(e["citizen_id"] for e in reads) == sorted(expected) and expected
        assert {(e["action"], e["outcome"], e["grant_id"], e["actor"]) for e in reads} == {
            ("grants.read", "allowed", grant["id"], "caseworker@tax-office")
        }
    assert w.grant(w.tax, grant["id"])["uses"] == 8


@pytest.mark.parametrize(
    ("label", "params", "auth"),
    [
        ("no token", {}, None),
        ("another scheme", {}, "Basic dXNlcjpwYXNz"),
        ("a forged token", {}, "Bearer not.a.token"),
        ("a role the policy refuses", {}, "citizen"),
        ("limit 0", {"limit": 0}, "tax"),
        ("limit over 5000", {"limit": 5001}, "tax"),
        ("limit not a number", {"limit": "ten"}, "tax"),
        ("limit twice", {"limit": [1, 2]}, "tax"),
        ("after not an id", {"after": "yesterday"}, "tax"),
        ("after without hyphens", {"after": "0" * 32}, "tax"),
        ("an unknown parameter", {"page": 2}, "tax"),
    ],
)
def test_a_request_the_lane_does_not_take_gets_the_routes_answer_and_audit(
    world: World, route_calls: list[str], label: str, params: dict[str, Any], auth: str | None
) -> None:
    w = world
    odile = w.citizen(ODILE)
    grant = w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["given_name"], max_uses=20)
    headers = {"tax": w.tax, "citizen": w.me(odile), None: {}}.get(auth, {"Authorization": str(auth)})
    fast = w.client.get(f"/v1/grants/{grant['id']}/data", params=params, headers=headers)
    # A refused token, role or parameter stops the route before its read.
    assert route_calls == [grant["id"]] or fast.status_code in (401, 403, 422), label
    slow = plain(w).get(f"/v1/grants/{grant['id']}/data", params=params, headers=headers)
    same(fast, slow)
    recorded = [len(events_of(w, r)) for r in (fast, slow)]
    assert recorded[0] == recorded[1] <= 1, f"{label}: recorded {recorded} (lane on, off): not as the route does"
    if fast.status_code in (401, 403):
        assert recorded == [1, 1], f"{label}: a refusal is audited exactly once"


def test_a_grant_id_in_another_form_goes_to_the_route(world: World, route_calls: list[str]) -> None:
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"], max_uses=5)
    compact = grant["id"].replace("-", "")
    fast = w.client.get(f"/v1/grants/{compact}/data", headers=w.tax)
    assert fast.status_code == 200 and route_calls == [grant["id"]]
    same(fast, plain(w).get(f"/v1/grants/{compact}/data", headers=w.tax))


def test_a_read_the_grant_rules_refuse_is_handed_over_spending_nothing_and_audited_once(
    world: World, route_calls: list[str]
) -> None:
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"], max_uses=1)
    assert w.read(w.tax, grant["id"]).status_code == 200 and route_calls == []
    exhausted = w.read(w.tax, grant["id"])
    assert route_calls == [grant["id"]], "the refusal is the route's"
    same(exhausted, plain(w).get(f"/v1/grants/{grant['id']}/data", headers=w.tax))
    assert exhausted.status_code == 403 and exhausted.json()["reason"] == "grant-exhausted", exhausted.text
    assert [e["outcome"] for e in events_of(w, exhausted)] == ["denied"]
    assert w.grant(w.tax, grant["id"])["uses"] == 1


def test_a_handed_over_request_costs_one_rate_limit_token_not_two(world: World, route_calls: list[str]) -> None:
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"])
    w.client.post(f"/v1/grants/{grant['id']}/revoke", headers=w.tax).raise_for_status()
    limited = express(w, rate_limit_per_minute=3)
    statuses = [limited.get(f"/v1/grants/{grant['id']}/data", headers=w.tax).status_code for _ in range(4)]
    assert len(route_calls) == 3, "the lane hands each refused read to the route"
    assert statuses == [403, 403, 403, 429], statuses


def test_the_write_lock_held_by_another_process_sends_the_read_to_the_route_which_waits(
    world: World, route_calls: list[str]
) -> None:
    w = world
    odile = w.citizen(ODILE)
    grant = w.granted(w.tax, citizen_id=odile, purpose="tax-assessment", fields=["income"])
    other = sqlite3.connect(w.settings.data_dir / "vault.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as another process's writer would
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        response = w.read(w.tax, grant["id"])
    finally:
        release.join()
        other.close()
    assert response.status_code == 200, response.text
    assert route_calls == [grant["id"]]
    assert response.json()["records"] == [{"citizen_id": odile, "fields": {"income": 31415}}]
    assert len(events_of(w, response)) == 1


@pytest.mark.parametrize("size", [QUICK_PAGE, QUICK_PAGE + 1])
def test_a_quick_page_is_the_lanes_and_a_larger_one_the_routes(world: World, route_calls: list[str], size: int) -> None:
    w = world
    ids = [w.citizen(person(i)) for i in range(size)]
    grant = w.granted(w.tax, citizen_ids=ids, purpose="tax-assessment", fields=["given_name"])
    response = w.read(w.tax, grant["id"], limit=1000)
    assert response.status_code == 200 and len(response.json()["records"]) == size
    assert route_calls == ([] if size <= QUICK_PAGE else [grant["id"]])
    assert w.grant(w.tax, grant["id"])["uses"] == 1, "one use, however it was served"


def test_the_lane_leaves_requests_under_a_root_path_to_the_route(world: World, route_calls: list[str]) -> None:
    """Behind a prefix the route matches the path without it: the lane must not serve what the route would not."""
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"])
    rooted = TestClient(create_app(w.settings, w.vault), root_path="/v1")
    fast = rooted.get(f"/v1/grants/{grant['id']}/data", headers=w.tax)
    slow = TestClient(create_app(w.settings.model_copy(update={"express_reads": False}), w.vault), root_path="/v1").get(
        f"/v1/grants/{grant['id']}/data", headers=w.tax
    )
    same(fast, slow)
    assert fast.status_code == 404 and w.grant(w.tax, grant["id"])["uses"] == 0


def test_a_handed_over_request_is_not_worked_twice(
    world: World, route_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read the lane could not run now goes straight to the threadpool; a token it saw refused is
    not verified again by the route."""
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"], max_uses=1)
    assert w.read(w.tax, grant["id"]).status_code == 200
    reads: list[bool] = []
    original_read = w.vault.grants.read

    def read(*args: Any, wait: bool = True, **kwargs: Any) -> Any:
        reads.append(wait)
        return original_read(*args, wait=wait, **kwargs)

    monkeypatch.setattr(w.vault.grants, "read", read)
    assert w.read(w.tax, grant["id"]).status_code == 403  # exhausted
    assert reads == [False, True], "the lane's quick try, then the route's read in the threadpool"

    verified: list[str] = []
    guard = w.client.app.state.guard  # type: ignore[attr-defined]
    original_verify = guard.verifier.verify

    def verify(token: str) -> Any:
        verified.append(token)
        return original_verify(token)

    monkeypatch.setattr(guard.verifier, "verify", verify)
    forged = w.read({"Authorization": "Bearer not.a.token"}, grant["id"])
    assert forged.status_code == 401 and verified == ["not.a.token"]
    assert len(events_of(w, forged)) == 1


def test_a_read_handed_over_for_a_busy_pool_gets_its_rate_limit_token_back(
    world: World, route_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"], max_uses=9)
    limited = express(w, rate_limit_per_minute=3)
    registry_engine = limited.app.state.guard.registry.engine  # type: ignore[attr-defined]
    monkeypatch.setattr(api.express, "connects_now", lambda engine: engine is registry_engine)  # stores busy
    statuses = [limited.get(f"/v1/grants/{grant['id']}/data", headers=w.tax).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429] and len(route_calls) == 3


FIELDS = ["given_name", "income", "national_id", "health_notes"]
_GRANT = Grant(
    id="8d0f3c52-9b1e-4f4e-9d55-0c1e2f3a4b5c",
    agency="tax-office",
    purpose="tax-assessment",
    fields=FIELDS,
    lawful_basis="legal-obligation",
    status="active",
    status_reason=None,
    expires_at="2026-12-01T00:00:00+00:00",
    max_uses=5,
    uses=1,
    case_ref=None,
    citizens=8,
    created_at="2026-11-25T00:00:00+00:00",
    jws=None,
)
_VALUE = st.one_of(st.text(max_size=40), st.integers(min_value=-(2**63), max_value=2**63 - 1))
_RECORD = st.tuples(st.uuids().map(str), st.none() | st.dictionaries(st.sampled_from(FIELDS), _VALUE, max_size=4))


@settings(max_examples=200, deadline=None)
@given(records=st.lists(_RECORD, max_size=8), after=st.none() | st.uuids().map(str), purpose=st.text(max_size=30))
def test_a_page_body_is_the_validated_models_bytes(
    records: list[tuple[str, dict[str, str | int] | None]], after: str | None, purpose: str
) -> None:
    """page_body serialises plain data without validating it: the same bytes as the GrantData model."""
    grant = dataclasses.replace(_GRANT, purpose=purpose)
    body = page_body(grant, records, after)
    adapter = TypeAdapter(GrantData)
    page = {
        "grant_id": grant.id,
        "purpose": purpose,
        "fields": grant.fields,
        "records": [{"citizen_id": c, "fields": v} for c, v in records],
        "next_after": after,
    }
    assert body == adapter.dump_json(adapter.validate_python(page))


def test_the_lane_is_not_installed_when_switched_off(world: World, route_calls: list[str]) -> None:
    w = world
    grant = w.granted(w.tax, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"])
    assert plain(w).get(f"/v1/grants/{grant['id']}/data", headers=w.tax).status_code == 200
    assert route_calls == [grant["id"]]


def test_a_revoked_clients_read_is_refused_charged_and_attributed_as_by_the_route(
    world: World, route_calls: list[str]
) -> None:
    """A client whose token outlives its revocation: the lane hands the read over, and the route's
    401 is charged to the client's rate and audited under the client, as with the lane off."""
    w = world
    app = w.app("tax-office")
    grant = w.granted(app, citizen_id=w.citizen(ODILE), purpose="tax-assessment", fields=["income"])
    w.vault.registry.revoke_client(w.apps["tax-office"].client_id)
    for client in (express(w, rate_limit_per_minute=2), plain(w, rate_limit_per_minute=2)):
        answers = [client.get(f"/v1/grants/{grant['id']}/data", headers=app) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert [e["actor"] for e in events_of(w, answers[0])] == [w.apps["tax-office"].client_id]
