"""ASGI middleware: security headers on every response, and requests only for hosts the service is.

Headers: a Content-Security-Policy that pages can live with (same-origin scripts, styles and
connections only, no inline script or style, no framing), `X-Content-Type-Options`,
`X-Frame-Options` for browsers without `frame-ancestors`, `Referrer-Policy`, and HSTS when the
request came over HTTPS (the scheme as uvicorn saw it, or as a trusted proxy said).

Hosts: nothing the service builds (redirects, links) may come from a Host header it does not
recognise, so a request for another host is refused (problem+json 400) before routing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = SECURITY_HEADERS + ((HSTS,) if scope.get("scheme") == "https" else ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers += [pair for pair in extra if pair[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_hosts(configured: Iterable[str], issuer: str) -> frozenset[str]:
    """The configured host names, or by default the issuer's host plus the local names."""
    hosts = [h.strip().lower() for h in configured if h.strip()]
    if not hosts:
        issuer_host = urlsplit(issuer).hostname
        hosts = [*([issuer_host] if issuer_host else []), *LOCAL_HOSTS]
    return frozenset(hosts)


def host_name(header: bytes) -> str | None:
    """The host name of a Host header, without its port (IPv6 literals unbracketed); None if malformed."""
    try:
        value = header.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return None
    try:
        parsed = urlsplit(f"//{value}")
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    if not parsed.hostname or parsed.username is not None or parsed.path or parsed.query or parsed.fragment:
        return None
    return parsed.hostname


class TrustedHosts:
    """Refuses (400, problem+json) a request whose Host header names a host the service is not."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers") or [] if k == b"host"]
        if len(values) == 1 and host_name(values[0]) in self.hosts:
            await self.app(scope, receive, send)
            return
        request_id = (scope.get("state") or {}).get("request_id")
        body = json.dumps(
            {
                "type": "https://citizen-vault.example/problems/unknown-host",
                "title": "Unknown host",
                "status": 400,
                "detail": "the Host header does not name this service",
                "instance": str(scope.get("path", ""))[:200],  # as every problem document (api/errors.py)
                "request_id": request_id,
            }
        ).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
