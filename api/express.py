"""The express lane: the hottest request, a small grant page (``GET /v1/grants/{id}/data``), served
without the framework's per-request machinery when it can succeed at once.

Why: measured under load (docs/benchmarks.md), FastAPI's share of a grant read (the middleware
chain inside Hygiene, the Request object, dependency resolution, parameter models) was about 40% of
its CPU, and the grant read is what agencies do all day. Here the same calls the route makes (the
Guard's token, role and policy checks, its rate limit, ``GrantService.read``, ``grants.page_body``)
run with the parameters read straight from the ASGI scope.

The rule that keeps this safe: **the lane answers only successes, and changes nothing before it
knows it has one.** Anything else is handed, exactly as it came, to the FastAPI route, which then
does everything itself and answers (and audits) as it always did:

* a request it does not fully understand: another method, a non-canonical id, a query parameter
  other than one canonical ``limit`` and ``after``, no bearer token;
* a refused token, role or policy (nothing is recorded by those checks; the route's error handler
  audits the refusal, once);
* work that cannot run on the event loop now: another store (PostgreSQL), a busy pool, the write
  lock held elsewhere, a page larger than QUICK_PAGE, or any refusal by the grant rules: all of
  these raise WouldWait from ``GrantService.read(wait=False)`` having changed nothing;
* the one thing taken before the read, a rate-limit token, is given back before handing over, so a
  handed-over request is charged once;
* nor is work done twice: a token the lane refused is refused again by the route without being
  verified again (``auth.REFUSED_TOKEN``), and a read the lane could not run now goes straight to
  the threadpool (``concurrency.TRIED_INLINE``).

It sits inside Hygiene (request id, path and size checks, no-store), so those apply unchanged, and
answers the same status, headers and body as the route (tests/api/test_express.py compares them).
``AppSettings.express_reads`` turns it off.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from api.concurrency import TRIED_INLINE
from api.errors import ApiProblem
from api.routes.grants import page_body
from api.security.auth import REFUSED_TOKEN
from keys.sqlstore import WouldWait, connects_now
from vault.audit.log import Actor

if TYPE_CHECKING:
    from api.security.auth import Guard
    from vault.runtime import Vault

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PATH = re.compile(f"/v1/grants/({_UUID})/data")
_QUERY = re.compile(f"(?:limit=([1-9][0-9]{{0,3}})|after=({_UUID}))")
MAX_LIMIT = 5000  # as the route's `limit` parameter


def _query(raw: bytes) -> tuple[int, str | None] | None:
    """(limit, after) of a query string of at most one canonical ``limit`` and one ``after``;
    None for anything else (the route then parses it, and refuses it if need be)."""
    limit, after = 1000, None
    if not raw:
        return limit, after
    seen: set[str] = set()
    for part in raw.decode("latin-1").split("&"):
        match = _QUERY.fullmatch(part)
        if match is None:
            return None
        name = "limit" if match.group(1) else "after"
        if name in seen:
            return None
        seen.add(name)
        if match.group(1):
            limit = int(match.group(1))
        else:
            after = str(uuid.UUID(match.group(2)))
    return (limit, after) if limit <= MAX_LIMIT else None


def _bearer(scope: Scope) -> str | None:
    """The token of the first Authorization header when it is ``Bearer <token>`` (as HTTPBearer reads it)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class GrantReadExpress:
    """ASGI middleware, innermost of the user middleware (inside Hygiene); see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Under a root_path the route matches the path without it: the lane leaves those alone.
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            match = _PATH.fullmatch(scope["path"])
            if match is not None:
                query = _query(scope["query_string"])
                token = _bearer(scope)
                if query is not None and token is not None:
                    body = await self._serve(scope, str(uuid.UUID(match.group(1))), *query, token)
                    if body is not None:
                        await _answer(send, body)
                        return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, grant_id: str, limit: int, after: str | None, token: str) -> bytes | None:
        """The page's body, or None (nothing changed) to hand the request to the route."""
        state = scope["app"].state
        guard: Guard = state.guard
        vault: Vault = state.vault
        if not (state.inline_writes and guard.inline_checks and connects_now(guard.registry.engine)):
            return None
        try:
            principal = guard.authenticate(token)
        except ApiProblem as refusal:
            scope["state"][REFUSED_TOKEN] = (token, refusal)  # the route raises it again, not verifying twice
            return None
        try:
            guard.authorize(principal, "grants", "use")
        except ApiProblem:
            return None
        key = principal.limit_key
        if guard.limiter.take(key) > 0:
            return None  # over the rate: the route answers 429 (a refused take changes nothing)
        # Yield once, as api/concurrency.run_short does, then ask the pools right before the read.
        await asyncio.sleep(0)
        who = Actor(principal.subject, principal.role, principal.agency, scope["state"].get("request_id"))
        try:
            if not (connects_now(vault.data_engine) and connects_now(vault.key_engine)):
                raise WouldWait
            grant, records, next_after = vault.grants.read(who, grant_id, after, limit, wait=False)
        except WouldWait:
            guard.limiter.give_back(key)
            scope["state"][TRIED_INLINE] = True  # the route's read goes straight to the threadpool
            return None
        return page_body(grant, records, next_after)


async def _answer(send: Send, body: bytes) -> None:
    """200 with the headers Starlette's ``Response(body, media_type="application/json")`` sends."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
