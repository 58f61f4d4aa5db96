"""The real server (`citizen-vault serve`): header size, count and read time are capped, and the
server's own refusals are problem+json like the app's (issue 19, findings 7 and 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.server_proc import CLI, Server, clean_env, exchange, free_port, initialised, parse_response, running

LIMITS = {
    "CITIZEN_VAULT_MAX_HEADER_BYTES": "8192",
    "CITIZEN_VAULT_MAX_HEADERS": "50",
    "CITIZEN_VAULT_HEADER_TIMEOUT_SECONDS": "1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    env = clean_env(**LIMITS)
    initialised(root / "data", env)
    port = free_port()
    command = [CLI, "--data-dir", str(root / "data"), "serve", "--port", str(port)]
    with running(command, env, port, root / "stderr.log") as srv:
        yield srv


def assert_server_problem(raw: bytes, status: int) -> dict[str, object]:
    code, headers, body = parse_response(raw)
    assert code == status
    assert headers["content-type"] == "application/problem+json"
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"] == body["request_id"]
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)  # every member the OpenAPI Problem schema requires
    assert body["type"].startswith("https://citizen-vault.example/problems/")
    return body  # type: ignore[no-any-return]


def test_an_unfinished_oversize_header_is_refused_with_431_and_the_connection_closed(server: Server) -> None:
    raw = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 16384, timeout=30)
    assert_server_problem(raw, 431)


def test_a_complete_request_with_too_many_headers_is_refused_with_431(server: Server) -> None:
    lines = b"".join(b"X-N%d: 1\r\n" % i for i in range(80))
    raw = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lines + b"\r\n", timeout=30)
    assert_server_problem(raw, 431)


def test_a_request_within_the_limits_is_served(server: Server) -> None:
    lines = b"".join(b"X-N%d: 1\r\n" % i for i in range(20))
    raw = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + lines + b"\r\n")
    assert parse_response(raw)[0] == 200


def test_a_partial_header_is_closed_by_the_server(server: Server) -> None:
    raw = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=60)
    assert_server_problem(raw, 408)


def test_a_connection_that_sends_nothing_is_closed_by_the_server(server: Server) -> None:
    assert exchange(server.port, b"", timeout=60) == b""


def test_a_raw_0xff_byte_in_the_query_gets_a_problem_document(server: Server) -> None:
    raw = exchange(server.port, b"GET /healthz?q=\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=30)
    body = assert_server_problem(raw, 400)
    assert "\\xff" not in str(body) and "\xff" not in str(body)


def test_server_refusals_are_logged_as_json_lines(server: Server) -> None:
    exchange(server.port, b"GET /healthz?q=\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=30)
    lines = [line for line in server.stderr.read_text().splitlines() if line.strip()]
    assert lines, "the refusal was not logged"
    for line in lines:
        json.loads(line)
