"""Open311 GeoReport v2 under /open311/v2/: a translation of the standard to and from the same
interaction service as /v1/interactions (docs/open311.md). No business rule here: which services
and items are public is vault.open311feed's, shapes are api.open311_translate's.

Reads (service list, service definition, request search and lookup, tokens) are public and need no
key, as in real deployments: they show nothing personal. Creation needs an application's api_key
(vault.open311keys) and is rate-limited per source address (before the key is checked, so guessing
keys is limited too) and per key. A citizen's bearer token, when sent, links the request to their
profile; nothing else does (not an email, not an account id). Creation is synchronous: the answer
carries the service_request_id, and a token (the same id) for clients that follow tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.errors import ApiProblem
from api.open311_render import FORMATS, answer, errors_hook
from api.open311_translate import (
    bad,
    definition_view,
    new_interaction,
    parse_form,
    refused_input,
    request_view,
    service_view,
)
from api.security.auth import Guard, forbidden, rate_limited, unauthorized
from api.security.limits import RateLimiter, source_of
from api.settings import AppSettings
from vault import open311keys
from vault.audit.log import Actor
from vault.interactions.errors import InteractionError
from vault.open311feed import CLOSED, OPEN, FeedQuery, Open311Feed

router = APIRouter(tags=["open311"], include_in_schema=False)  # GeoReport v2 is its own documentation
BASE = "/open311/v2"
PUBLIC_PATHS = frozenset(
    f"{BASE}/{p}" for p in ("services.{fmt}", "services/{name}", "requests.{fmt}", "requests/{name}", "tokens/{name}")
)
MAX_IDS = 50
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 10_000
FORM = "application/x-www-form-urlencoded"


@dataclass
class Open311State:
    """What the routes share: the feed, the key checker and the creation limits."""

    feed: Open311Feed
    keys: open311keys.Open311Keys
    per_key: RateLimiter
    per_source: RateLimiter


def install(app: FastAPI, settings: AppSettings) -> None:
    """Add the routes, render their refusals as GeoReport error lists, and build the creation limits."""
    vault = app.state.vault
    app.state.open311 = Open311State(
        Open311Feed(vault.interactions),
        open311keys.for_vault(vault),
        RateLimiter(settings.open311_creates_per_key_minute),
        RateLimiter(settings.open311_creates_per_source_minute),
    )
    app.include_router(router)
    app.state.problem_page = errors_hook(getattr(app.state, "problem_page", None))


def _state(request: Request) -> Open311State:
    state: Open311State = request.app.state.open311
    return state


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise bad("unknown-format", "answers come as .json or .xml", 404)
    return fmt


def _split(name: str) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot:
        raise bad("unknown-format", "add .json or .xml to the path", 404)
    return stem, _fmt(fmt)


def _public(request: Request) -> Actor:
    """Who reads the public feed, for the audit events the interaction service writes."""
    return Actor("open311-public", "public", "-", getattr(request.state, "request_id", None))


# -- services -------------------------------------------------------------------------------------
@router.get(f"{BASE}/services.{{fmt}}")
def list_services(fmt: str, request: Request) -> Response:
    """The services Open311 offers."""
    return answer([service_view(s) for s in _state(request).feed.services()], _fmt(fmt), "services")


@router.get(f"{BASE}/services/{{name}}")
def service_definition(name: str, request: Request) -> Response:
    """A service's questions (``services/{service_code}.json``)."""
    code, fmt = _split(name)
    return answer(definition_view(_state(request).feed.service(code)), fmt, "service_definition")


# -- requests -------------------------------------------------------------------------------------
@router.post(f"{BASE}/requests.{{fmt}}")
async def create_request(fmt: str, request: Request) -> Response:
    """File a service request (form-encoded, GeoReport v2 field names)."""
    request.state.audit_action = "open311.create"  # refusals below are audited under this name
    fmt = _fmt(fmt)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise bad("unsupported-media-type", f"send the form as {FORM}", 415)
    state = _state(request)
    wait = state.per_source.take(source_of(request.client.host if request.client else None))
    if wait > 0:
        raise rate_limited(wait, "open311-source-rate")
    fields, attributes = parse_form(await request.body())
    api_key = fields.get("api_key", "")
    if not api_key:
        raise bad("api-key-required", "api_key is required to create a request", 401)
    app = await run_in_threadpool(state.keys.check, api_key)
    if app is None:
        raise bad("invalid-api-key", "api_key is not valid (unknown or revoked)", 403)
    wait = state.per_key.take(app.key_id)
    if wait > 0:
        raise rate_limited(wait, "open311-key-rate")
    citizen = await run_in_threadpool(_citizen, request)
    new = new_interaction(fields, attributes, None)
    if citizen is not None:
        actor = citizen
    else:
        offered = state.feed.interactions.catalogue.services.get(new.service_code)
        agency = offered.agency if offered is not None else "-"
        actor = Actor(f"open311-app:{app.key_id}", "open311-app", agency, getattr(request.state, "request_id", None))
    try:
        created = await run_in_threadpool(state.feed.create, actor, new)
    except InteractionError as exc:
        raise refused_input(exc) from None
    service = state.feed.service(created.service_code)
    notice = f"{created.agency} acknowledges within {service.ack_hours} hours."
    body = [{"service_request_id": created.id, "token": created.id, "service_notice": notice, "account_id": None}]
    return answer(body, fmt, "service_requests")


def _citizen(request: Request) -> Actor | None:
    """The citizen a bearer token proves, or None without one; a token that does not prove a citizen is refused."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing-token")
    guard: Guard = request.app.state.guard
    principal = guard.identify(token.strip())
    request.state.principal = principal
    guard.limit(principal.limit_key)
    guard.check_role(principal)
    if principal.role != "citizen":
        raise forbidden("citizen-only", "only a citizen's token links a request; officers use /v1/interactions")
    guard.authorize(principal, "me-interactions", "create")  # the same rule as /v1/me/interactions
    try:
        uuid.UUID(principal.subject)
    except ValueError:
        raise ApiProblem(404, "not-found", "Not found", "no profile for this identity", reason="no-profile") from None
    return Actor(principal.subject, principal.role, principal.agency, getattr(request.state, "request_id", None))


@router.get(f"{BASE}/requests.{{fmt}}")
def search_requests(fmt: str, request: Request) -> Response:
    """Search the public feed (GeoReport v2 filters, and the paging extension page / page_size)."""
    fmt = _fmt(fmt)
    feed = _state(request).feed
    query = _query(request.query_params.multi_items(), feed)
    items = feed.page(_public(request), query)
    return answer([request_view(i, feed.interactions.catalogue) for i in items], fmt, "service_requests")


@router.get(f"{BASE}/requests/{{name}}")
def get_request(name: str, request: Request) -> Response:
    """One service request of the public feed (``requests/{service_request_id}.json``)."""
    iid, fmt = _split(name)
    feed = _state(request).feed
    item = feed.one(_public(request), iid)
    return answer([request_view(item, feed.interactions.catalogue)], fmt, "service_requests")


@router.get(f"{BASE}/tokens/{{name}}")
def get_token(name: str, request: Request) -> Response:
    """The request a creation token stands for (creation is synchronous: the token is the request's id)."""
    token, fmt = _split(name)
    feed = _state(request).feed
    item = feed.one(_public(request), token)
    return answer([{"token": token, "service_request_id": item.id}], fmt, "service_requests")


# -- search parameters ----------------------------------------------------------------------------
def _query(items: list[tuple[str, str]], feed: Open311Feed) -> FeedQuery:
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            raise bad("invalid-parameter", f"{name[:40]} given twice")
        params[name] = value
    ids = tuple(i.strip() for i in params.get("service_request_id", "").split(",") if i.strip())
    if len(ids) > MAX_IDS or any(len(i) > 64 for i in ids):
        raise bad("invalid-parameter", f"service_request_id: at most {MAX_IDS} ids, comma-separated")
    code = params.get("service_code") or None
    if code is not None:
        feed.service(code)  # an unknown or unoffered service is 404, as for its definition
    statuses: tuple[str, ...] = ()
    for status in (s.strip() for s in params.get("status", "").split(",") if s.strip()):
        if status not in ("open", "closed"):
            raise bad("invalid-parameter", "status: open or closed (comma-separated)")
        statuses += OPEN if status == "open" else CLOSED
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if start is not None and end is not None and start > end:
        raise bad("invalid-parameter", "start_date is after end_date")
    page = _int(params, "page", 1, MAX_PAGE, 1)
    size = _int(params, "page_size", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    return FeedQuery(ids, code, statuses, start, end, size, (page - 1) * size)


def _date(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or not 1900 <= moment.year <= 9000:
        raise bad("invalid-parameter", f"{name}: a W3C date-time such as 2026-01-31T00:00:00Z")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _int(params: dict[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not low <= int(raw) <= high:
        raise bad("invalid-parameter", f"{name}: a whole number from {low} to {high}")
    return int(raw)


__all__ = ["PUBLIC_PATHS", "install", "router"]
