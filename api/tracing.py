"""Optional OpenTelemetry spans (setting `tracing`, off by default; docs/operations.md, "Tracing").

Spans go through the OpenTelemetry API to whatever tracer provider the process has: none (no-op)
unless the operator installs an SDK and exporter (for example with `opentelemetry-instrument`).
Spans cover the request, the policy check, key unwraps, audit appends and database statements.
Their attributes are codes only: route template, method, status, role, resource and action, KEK
version, statement kind (SELECT, INSERT...). Never a path, statement text, parameter, subject,
citizen id or field value.
"""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry import trace
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observe import route_template
from vault.runtime import Vault

tracer = trace.get_tracer("citizen_vault")
_SPANS = "citizen_vault.spans"


class Traced:
    """ASGI middleware: one span per HTTP request, named by its route template once it is known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        with tracer.start_as_current_span(f"HTTP {method}", kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", method)

            async def watching(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", int(message["status"]))
                await send(message)

            try:
                await self.app(scope, receive, watching)
            finally:
                route = route_template(scope)
                span.set_attribute("http.route", route)
                span.update_name(f"HTTP {method} {route}")


def instrument(vault: Vault, policy: Any) -> None:
    """Spans around the policy check, key unwraps, audit appends and database statements of this
    process (instance attributes and engine events: nothing else changes)."""
    allows = policy.allows

    @functools.wraps(allows)
    def checked(role: str, agency: str, resource: str, action: str, *args: Any, **kwargs: Any) -> bool:
        with tracer.start_as_current_span("policy.check") as span:
            span.set_attributes({"cv.role": role, "cv.resource": resource, "cv.action": action})
            allowed: bool = allows(role, agency, resource, action, *args, **kwargs)
            span.set_attribute("cv.allowed", allowed)
            return allowed

    setattr(policy, "allows", checked)  # noqa: B010 - instance override
    unwrap = vault.provider.unwrap

    @functools.wraps(unwrap)
    def unwrapping(version: int, *args: Any, **kwargs: Any) -> bytes:
        with tracer.start_as_current_span("key.unwrap") as span:
            span.set_attribute("cv.kek_version", version)
            return unwrap(version, *args, **kwargs)

    setattr(vault.provider, "unwrap", unwrapping)  # noqa: B010
    append = vault.audit.append

    @functools.wraps(append)
    def appending(conn: Any, actor: Any, events: Any) -> Any:
        with tracer.start_as_current_span("audit.append") as span:
            span.set_attribute("cv.events", len(events))
            return append(conn, actor, events)

    setattr(vault.audit, "append", appending)  # noqa: B010
    for name, engine in (("data", vault.data_engine), ("keys", vault.key_engine)):
        _trace_statements(engine, name)


def _trace_statements(engine: Engine, store: str) -> None:
    system = engine.dialect.name

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        span = tracer.start_span("db.statement")
        span.set_attributes(
            {"db.system": system, "cv.store": store, "db.operation": statement.lstrip().split(" ", 1)[0].upper()[:16]}
        )
        conn.info.setdefault(_SPANS, []).append(span)

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: Any, *_: Any) -> None:
        spans = conn.info.get(_SPANS)
        if spans:
            spans.pop().end()

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        spans = context.connection.info.get(_SPANS) if context.connection is not None else None
        if spans:
            span = spans.pop()
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(context.original_exception).__name__))
            span.end()
