"""ASGI middleware that watches every request: one JSON access line and the request metrics.

The access line carries the request id, method, route template (never the path: paths carry
citizen and grant ids), status, duration, and the caller's role and agency when known; never a
subject, token, query string or body. Refusals are counted by their problem slug or reason code.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics, label

access = logging.getLogger("citizen_vault.access")
PROBLEM = b"application/problem+json"
_MAX_PROBLEM = 8192


def route_template(scope: Scope) -> str:
    """The matched route's path template; for a request answered before routing (the express lane,
    a refusal by a middleware), the template it would have matched; else "unmatched"."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    app = scope.get("app")
    return _match(scope, getattr(getattr(app, "router", None), "routes", ())) or "unmatched"


def _match(scope: Scope, routes: Any) -> str | None:
    # FastAPI keeps an included router as one wrapper route (original_router): look inside it.
    for candidate in routes:
        try:
            match, _ = candidate.matches(scope)
        except (KeyError, TypeError):
            continue
        if match is not Match.FULL:
            continue
        inner = getattr(candidate, "original_router", None)
        if inner is not None:
            found = _match(scope, inner.routes)
            if found:
                return found
        elif hasattr(candidate, "path"):
            return str(candidate.path)
    return None


def refusal_reason(body: bytes) -> str:
    """The reason code of a problem document (its `reason`, else its type slug)."""
    try:
        document = json.loads(body)
    except ValueError:
        return "unparsed"
    if not isinstance(document, dict):
        return "unparsed"
    if isinstance(document.get("reason"), str):
        return label(document["reason"])
    return label(str(document.get("type", "")).rsplit("/", 1)[-1])


class Observe:
    """Outermost middleware: times the request, then logs and counts it once it is answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        access.setLevel(logging.INFO)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        problem = bytearray()
        is_problem = False

        async def watching(message: Message) -> None:
            nonlocal status, is_problem
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers") or [])
                is_problem = headers.get(b"content-type", b"").startswith(PROBLEM)
            elif message["type"] == "http.response.body" and is_problem and len(problem) < _MAX_PROBLEM:
                problem.extend(message.get("body", b"")[: _MAX_PROBLEM - len(problem)])
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            self._record(scope, status, time.perf_counter() - start, bytes(problem) if is_problem else None)

    def _record(self, scope: Scope, status: int, seconds: float, problem: bytes | None) -> None:
        route, method = route_template(scope), label(scope.get("method", "").lower())
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.latency.labels(route, method).observe(seconds)
        reason = None
        if status >= 400:
            reason = refusal_reason(problem) if problem is not None else f"http-{status}"
            self.metrics.refusals.labels(reason).inc()
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        line: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "role": getattr(principal, "role", None),
            "agency": getattr(principal, "agency", None),
        }
        if reason is not None:
            line["reason"] = reason
        access.info("request", extra=line)
