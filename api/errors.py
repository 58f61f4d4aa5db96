"""Every error becomes an RFC 9457 problem document, mapped here and nowhere else.

Domain errors never subclass HTTPException; this table decides their status. Messages are the
domain's own (they never carry field values); unexpected exceptions become a bare 500 with only a
request id, and are logged with their type.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.security.limits import Limits, Refusal, source_of, write_aggregates
from vault import errors as domain
from vault import health
from vault.audit.log import Actor, Event
from vault.interactions import errors as interaction_errors

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# How a refusal of a page request is answered (api/web installs it as app.state.problem_page): given
# the request, the problem document and its headers, an HTML page with the same status, or None for
# the problem+json answer. The handlers below still decide the status and audit; this only renders.
ProblemPage = Callable[[Request, dict[str, Any], dict[str, str] | None], Response | None]

# domain error -> (status, type slug, title)
DOMAIN: list[tuple[type[Exception], int, str, str]] = [
    (domain.ValidationFailed, 422, "validation-failed", "The request does not satisfy the field catalogue"),
    (domain.NotFound, 404, "not-found", "Not found"),
    (domain.Refused, 403, "refused", "Refused by a rule of the vault (its reason says which)"),
    (domain.Conflict, 409, "conflict", "Conflicts with existing data"),
    (domain.CitizenErased, 410, "erased", "The citizen was erased"),
    (domain.CannotDecrypt, 503, "cannot-decrypt", "Stored data cannot be decrypted"),
    (domain.ConfigurationError, 503, "unavailable", "The vault is not able to serve this request"),
    (domain.AuditUnavailable, 503, "audit-unavailable", "The access could not be audited, so it did not happen"),
    # Interactions (issue 15): each carries a reason code and, per input, what is wrong.
    (interaction_errors.InteractionInvalid, 422, "invalid-interaction", "The interaction is not valid"),
    (interaction_errors.TransitionRefused, 409, "invalid-transition", "The item's status does not allow this"),
]


class ApiProblem(Exception):
    """An HTTP-level refusal (auth, policy, limits) raised by the interface layer itself."""

    def __init__(
        self, status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.extra = extra
        self.principal: Any = None  # who was refused, when known (for the audit event)
        self.audit_reason: str | None = None  # recorded instead of the answer's reason (which must not tell)
        super().__init__(detail)


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response (or, for a page request, the page the installed ProblemPage renders)."""
    body = problem_document(
        status, slug, title, detail, request.url.path, getattr(request.state, "request_id", None), **extra
    )
    as_page: ProblemPage | None = getattr(request.app.state, "problem_page", None)
    page = as_page(request, body, headers) if as_page is not None else None
    if page is not None:
        return page
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def problem_document(
    status: int, slug: str, title: str, detail: str, path: str, request_id: str | None, **extra: Any
) -> dict[str, Any]:
    """The body of every problem answer, the middleware's own included (one format, issue 19 finding 10)."""
    return {
        "type": f"https://citizen-vault.example/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path[:200],
        "request_id": request_id,
        **extra,
    }


def refusal_of(request: Request, exc: ApiProblem) -> Refusal | None:
    """What was refused, to whom, as the audit budget compares refusals (None: not audited)."""
    action = getattr(request.state, "audit_action", None)
    if action is None:
        return None
    principal = exc.principal or getattr(request.state, "principal", None)
    return Refusal(
        exc.status,
        action,
        str(exc.audit_reason or exc.extra.get("reason") or exc.slug),
        getattr(principal, "subject", None) or "anonymous",
        getattr(principal, "role", None) or "-",
        getattr(principal, "agency", None) or "-",
    )


def audit_refusal(request: Request, refusal: Refusal) -> None:
    """Record a refused request (bad token, role not held, policy, rate limit) in the audit log.

    The refusal stands even when the event cannot be written: it returns no data either way.
    """
    actor = Actor(refusal.subject, refusal.role, refusal.agency, getattr(request.state, "request_id", None))
    try:  # only a well-formed id is recorded: a path segment is caller-controlled text
        citizen: str | None = str(uuid.UUID(str(request.path_params.get("citizen_id"))))
    except ValueError:
        citizen = None
    event = Event(refusal.action, outcome="denied", citizen_id=citizen, reason=refusal.reason)
    try:
        request.app.state.vault.audit.record(actor, event)
    except domain.VaultError:
        log.error("could not audit a refused request", extra={"action": refusal.action})


def client_key(request: Request) -> str:
    """Whose failures these are before authentication: the client address (see limits.source_of)."""
    return source_of(request.client.host if request.client else None)


def refusal_budget(request: Request, exc: ApiProblem, refusal: Refusal) -> tuple[str, Refusal]:
    """Whose audit budget a refusal is charged to, and what identical refusals it is counted with:
    the caller once identified (a 403, or a 429 after the token was verified); else the source
    address (401s), and then the identity a request merely claimed is left out of the comparison,
    or made-up client ids would each get an aggregate event of their own."""
    key = getattr(getattr(request.state, "principal", None), "limit_key", None)  # set by auth.require
    if exc.status != 401 and isinstance(key, str):
        return key, refusal
    return client_key(request), dataclasses.replace(refusal, subject="anonymous", role="-", agency="-")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _where(err: Any) -> str:
    """Where a validation error is, as ``a.b.0``: names from the schema and list positions only.

    A location can hold the caller's own text (an unknown member, a key of ``fields``); a part that
    is not shaped like a schema name is shown as ``*`` and an unknown member is never named at all,
    so nothing unvalidated is echoed (issue 19, finding 13).
    """
    parts = [p for p in err.get("loc", ()) if p != "body"]
    if err.get("type") == "extra_forbidden" and parts:
        parts[-1] = "*"
    shown = [str(p) if isinstance(p, int) or _NAME.fullmatch(str(p)) else "*" for p in parts]
    return ".".join(shown) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> Response:
        refusal = refusal_of(request, exc) if exc.status in (401, 403, 429) else None
        if refusal is not None:
            # Each refusal is audited, up to a budget per caller a minute; past it, the same answer,
            # and identical refusals are counted into one aggregate event (api/security/limits.py).
            limits: Limits = request.app.state.guard.limits
            if limits.refusals.admit(*refusal_budget(request, exc, refusal)):
                await run_in_threadpool(audit_refusal, request, refusal)  # a write: never on the loop
            due = limits.refusals.due(every=1.0)  # aggregates of spells that ended, if no timer wrote them
            if due:
                await run_in_threadpool(write_aggregates, request.app.state.vault.audit, due)
        return problem(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(domain.VaultError)
    async def _domain(request: Request, exc: domain.VaultError) -> Response:
        for kind, status, slug, title in DOMAIN:
            if isinstance(exc, kind):
                extra: dict[str, Any] = {}
                if isinstance(exc, domain.ValidationFailed):
                    extra["errors"] = exc.problems
                if isinstance(exc, domain.Refused):
                    extra |= {"reason": exc.reason, **exc.details}
                if isinstance(exc, interaction_errors.InteractionError):
                    extra |= {"reason": exc.reason, "errors": exc.problems}
                if isinstance(exc, domain.Conflict) and isinstance(getattr(exc, "reason", None), str):
                    extra["reason"] = getattr(exc, "reason")  # noqa: B009 - a conflict with a code (vault/requests)
                if isinstance(exc, domain.ConfigurationError):
                    log.error("configuration error while serving", extra={"cause": str(exc)})
                    return problem(request, status, slug, title, "try again later or contact the operator")
                return problem(request, status, slug, title, str(exc), **extra)
        return problem(request, 400, "bad-request", "Bad request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc, msg = _where(err), str(err.get("msg", "invalid"))[:200]
            if err.get("type") == "extra_forbidden":  # the member's name is the caller's text: not repeated
                msg = "unknown member (not in the schema)"
            errors[loc[:100]] = msg
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        if malformed:
            return problem(request, 400, "malformed-json", "The body is not valid JSON", "send a JSON object")
        return problem(request, 422, "invalid-request", "The request is not valid", "see errors", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(exc.status_code, "http-error")
        return problem(request, exc.status_code, slug, str(exc.detail), str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error", extra={"cause": type(exc).__name__, "path": request.url.path[:200]})
        return problem(request, 500, "internal", "Internal error", "the error was logged with this request id")

    async def _store_down(request: Request, exc: Exception) -> Response:
        # A store is down (docs/operations.md, "Not ready"): nothing was committed; retry later.
        log.warning("store unavailable", extra={"cause": type(exc).__name__})
        headers = {"Retry-After": str(health.RETRY_AFTER_SECONDS)}
        detail = "a database is unavailable; retry later"
        return problem(
            request, 503, "store-unavailable", "Store unavailable", detail, headers, reason="store-unavailable"
        )

    for kind in health.STORE_DOWN:
        app.add_exception_handler(kind, _store_down)
