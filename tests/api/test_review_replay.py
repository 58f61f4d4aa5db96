"""Gaps found by replaying issue 19's attacks against the real server (`citizen-vault serve`).

A header cap that counted every byte of a read, body included, answered 431 "headers too large" to
a request whose headers and body arrived together (as a proxy or a single write sends them) once
the body passed the cap: a legitimate body (a 20,000-character scan of accented text is 120 KB of
JSON) was refused, and an oversized one got 431 instead of 413 (finding 9's precise status).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.server_proc import CLI, Server, clean_env, exchange, free_port, initialised, parse_response, running

HEADER_CAP = 8192
BODY_CAP = 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    env = clean_env(
        CITIZEN_VAULT_MAX_HEADER_BYTES=str(HEADER_CAP),
        CITIZEN_VAULT_MAX_BODY_BYTES=str(BODY_CAP),
        CITIZEN_VAULT_HEADER_TIMEOUT_SECONDS="5",
    )
    initialised(root / "data", env)
    port = free_port()
    command = [CLI, "--data-dir", str(root / "data"), "serve", "--port", str(port)]
    with running(command, env, port, root / "stderr.log") as srv:
        yield srv


def one_write(path: bytes, content_type: bytes, body: bytes) -> bytes:
    """A whole request, headers and body, as one buffer (so the server reads them together)."""
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type + b"\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    return head + body


def send_and_read(port: int, payload: bytes) -> bytes:
    """Send ``payload`` and read the answer; a server that answers early and closes resets the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        chunks: list[bytes] = []
        try:
            sock.sendall(payload)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            chunks.append(_drain(sock))
        return b"".join(chunks)


def _drain(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_a_body_past_the_header_cap_sent_with_its_headers_reaches_the_app(server: Server) -> None:
    body = b'{"text": "' + b"\\u00e9" * 8000 + b'"}'  # 48 KB: under the body cap, over the header cap
    assert HEADER_CAP < len(body) < BODY_CAP
    request = one_write(b"/v1/pii/scan", b"application/json", body)
    status, headers, problem = parse_response(exchange(server.port, request))
    assert status == 401, problem  # the app saw the request: no token
    assert problem["reason"] == "missing-token"
    assert headers["content-type"] == "application/problem+json"


def test_a_body_over_the_body_cap_sent_with_its_headers_gets_413_not_431(server: Server) -> None:
    body = b"grant_type=client_credentials&client_id=cli_x&client_secret=" + b"a" * (2 * BODY_CAP)
    status, _, problem = parse_response(
        send_and_read(server.port, one_write(b"/v1/token", b"application/x-www-form-urlencoded", body))
    )
    assert status == 413, problem
    assert problem["type"].endswith("/too-large")


def test_an_oversize_header_in_one_write_with_a_body_is_still_431(server: Server) -> None:
    request = (
        b"POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (2 * HEADER_CAP) + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nConnection: close\r\n\r\nx=yz"
    )
    status, _, problem = parse_response(exchange(server.port, request, timeout=30))
    assert status == 431, problem


def test_a_request_for_another_host_gets_a_problem_document_with_every_documented_member(server: Server) -> None:
    raw = exchange(server.port, b"GET /v1/me/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    status, headers, problem = parse_response(raw)
    assert status == 400 and "location" not in headers
    required = {"type", "title", "status", "detail", "instance", "request_id"}  # the OpenAPI Problem schema
    assert required <= set(problem), problem
    assert problem["instance"] == "/v1/me/"
