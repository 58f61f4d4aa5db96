"""ASGI middleware: request ids, path hygiene, body size limit, no-store caching."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_document

PROBLEM = b"application/problem+json"
_BAD_PATH = re.compile(r"//|/\./|/\.\./|/\.{1,2}$|\\|%2[ef]|%5c|%00", re.IGNORECASE)


async def _problem(send: Send, status: int, slug: str, title: str, detail: str, scope: Scope, request_id: str) -> None:
    """The same problem document and headers as every other answer (api/errors.py), sent before any
    routing; the connection is closed, since the body, if any, was not read."""
    document = problem_document(status, slug, title, detail, scope["path"], request_id)
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-request-id", request_id.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class Hygiene:
    """Assigns a request id; refuses non-normalised paths (400) and oversize bodies (413) before any
    routing or parsing; marks every response no-store (they may carry personal data)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if _BAD_PATH.search(raw_path.decode("latin-1")):
            await _problem(send, 400, "bad-path", "Path not normalised", "use the canonical path", scope, request_id)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _problem(
                send, 413, "too-large", "Request body too large", f"at most {self.max_body} bytes", scope, request_id
            )
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers: list[Any] = list(message.get("headers", []))
                headers += [(b"x-request-id", request_id.encode()), (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except _TooLarge:
            if not started:
                await _problem(
                    send,
                    413,
                    "too-large",
                    "Request body too large",
                    f"at most {self.max_body} bytes",
                    scope,
                    request_id,
                )
