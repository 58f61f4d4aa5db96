"""Bodies are read only after the caller is authenticated and allowed, then parsed with limits, each
refusal its own problem document; and every answer the service gives, the middleware's own
included, is the same problem format with the same headers (issue 19, findings 9 and 10).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx import Response

from tests.support.api_world import ODILE, World, open_world, problem

JSON = {"content-type": "application/json"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        yield w


def _post(w: World, content: bytes, headers: dict[str, str], path: str = "/v1/citizens") -> Response:
    response: Response = w.client.post(path, content=content, headers={**JSON, **headers})
    return response


def _slug(response: Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def test_a_chunked_body_over_the_limit_is_413(world: World) -> None:
    w = world
    chunk = b" " * 65536

    def ten_megabytes() -> Iterator[bytes]:
        yield b'{"fields": {"given_name": "'
        for _ in range(160):
            yield chunk
        yield b'"}}'

    response = w.client.post("/v1/citizens", content=ten_megabytes(), headers={**JSON, **w.registrar})
    doc = problem(response, 413)
    assert _slug(response) == "too-large" and doc["request_id"] == response.headers["x-request-id"]


def test_a_body_is_not_parsed_before_the_caller_is_authenticated(world: World) -> None:
    w = world
    for content in (b"{not json", b"[" * 5000, b'{"fields": {"income": ' + b"9" * 5000 + b"}}", b'{"a": "\xff"}'):
        problem(_post(w, content, {}), 401)
        problem(_post(w, content, w.compliance), 403)  # authenticated, but not allowed to create profiles


@pytest.mark.parametrize(
    ("content", "slug"),
    [
        (b"{not json", "malformed-json"),
        (b'{"fields": {"income": NaN}}', "malformed-json"),
        (b'{"fields": {"income": 1e999}}', "number-out-of-range"),
        (b'{"fields": ' + b'{"a": ' * 100 + b"1" + b"}" * 101, "too-deep"),
        (b"[" * 100_000 + b"]" * 100_000, "too-deep"),
        (b'{"fields": {"income": ' + b"9" * 5000 + b"}}", "number-too-long"),
        (b'{"fields": {"given_name": "Od\xffile"}}', "invalid-utf8"),
    ],
)
def test_each_unparseable_body_gets_its_own_problem(world: World, content: bytes, slug: str) -> None:
    response = _post(world, content, world.registrar)
    problem(response, 400)
    assert _slug(response) == slug, response.text


def test_a_body_that_is_not_json_is_415(world: World) -> None:
    response = world.client.post(
        "/v1/citizens", content=b"fields=1", headers={"content-type": "text/plain", **world.registrar}
    )
    problem(response, 415)


def test_a_well_formed_body_still_works(world: World) -> None:
    w = world
    created = w.client.post("/v1/citizens", json={"fields": ODILE}, headers=w.registrar)
    assert created.status_code == 201, created.text


def _shape(response: Response) -> tuple[set[str], str, str]:
    doc = response.json()
    assert doc["request_id"] == response.headers["x-request-id"], (doc, response.headers)
    assert doc["instance"], doc
    return set(doc), response.headers["content-type"], response.headers["cache-control"]


def test_the_middlewares_own_answers_are_problems_like_every_other(world: World) -> None:
    w = world
    reference = problem(w.client.get("/v1/no-such-thing"), 404)
    bad_path = w.client.get("/v1//citizens", headers=w.registrar)
    problem(bad_path, 400)
    declared_too_large = w.client.post(
        "/v1/citizens", content=b"{}", headers={**JSON, **w.registrar, "content-length": str(10**9)}
    )
    problem(declared_too_large, 413)
    expected = _shape(w.client.get("/v1/no-such-thing"))
    assert set(reference) == expected[0]
    for response in (bad_path, declared_too_large):
        assert _shape(response) == expected, (response.headers, response.text)


def test_a_request_with_a_body_is_authenticated_and_charged_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    guard = w.client.app.state.guard  # type: ignore[attr-defined]
    calls = {"identify": 0, "take": 0}
    identify, take = guard.identify, guard.limiter.take

    def counted_identify(token: str) -> object:  # the token verified, once
        calls["identify"] += 1
        return identify(token)

    def counted_take(key: str) -> float:
        calls["take"] += 1
        result: float = take(key)
        return result

    monkeypatch.setattr(guard, "identify", counted_identify)
    monkeypatch.setattr(guard.limiter, "take", counted_take)
    created = w.client.post("/v1/citizens", json={"fields": ODILE}, headers=w.registrar)
    assert created.status_code == 201, created.text
    assert calls == {"identify": 1, "take": 1}
