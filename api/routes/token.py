"""POST /v1/token: OAuth 2.0 client credentials for agency applications.

The secret is checked first, so that a correct secret always gets its token: nobody can lock an
agency's app out by sending wrong secrets for it (issue 19). Failures are limited per (client,
source) and per source (429 past either); successes only by a generous issuing rate per client.
Many failures for one client, from whatever sources, raise a ``token.lockout-pressure`` event once
per spell, which the compliance flags show (api/security/limits.py, TokenLimits).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem, client_key
from api.schemas import TokenResponse
from api.security import issuing
from api.security.auth import rate_limited
from api.security.limits import Limits, Pressure
from vault.audit.log import Actor, Event
from vault.errors import NotFound
from vault.registry import Registry

router = APIRouter(tags=["identity"])
MAX_FORM_BYTES = 4096


def _invalid_client() -> ApiProblem:
    return ApiProblem(
        401,
        "invalid-client",
        "Client authentication failed",
        "unknown client, wrong secret, or a client that may not have tokens now",
        {"WWW-Authenticate": 'Basic realm="citizen-vault"'},
        error="invalid_client",
    )


@router.post(
    "/v1/token",
    response_model=TokenResponse,
    responses={401: {"description": "Client authentication failed"}, 429: {"description": "Too many attempts"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            }
        }
    },
)
async def token(request: Request) -> TokenResponse:
    """Exchange client id and secret (form fields or HTTP Basic) for a short-lived access token."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ApiProblem(415, "unsupported-media-type", "Use application/x-www-form-urlencoded", "OAuth 2.0 form body")
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise ApiProblem(413, "too-large", "Request too large", f"at most {MAX_FORM_BYTES} bytes")
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode("ascii"), strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise ApiProblem(
            400, "malformed-form", "Malformed form", "not ASCII form data", error="invalid_request"
        ) from None
    if form.get("grant_type") != "client_credentials":
        raise ApiProblem(
            400,
            "unsupported-grant-type",
            "Unsupported grant type",
            "use client_credentials",
            error="unsupported_grant_type",
        )
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid_client() from None
    request.state.audit_action = "token.issue"  # a failed client authentication is audited as a login failure
    state = request.app.state
    limits: Limits = state.guard.limits
    registry: Registry = state.vault.registry
    client_id = (client_id or "")[:64]
    # One answer for every cause; the audit event says which (client-pending, secret-expired ...).
    # Database work in the threadpool, never on the event loop (a network round trip on PostgreSQL).
    if client_id and secret:
        client, why = await run_in_threadpool(registry.check_client, client_id, secret)
    else:
        client, why = None, "invalid-client"
    if client is None:
        wait, pressure = limits.tokens.failed(client_id, client_key(request))
        if pressure is not None:
            await run_in_threadpool(_record_pressure, request, registry, pressure)
        refusal = rate_limited(wait, "login-failures") if wait > 0 else _invalid_client()
        refusal.principal = Actor(client_id or "anonymous", "agency-app", "-")
        if wait <= 0:
            refusal.audit_reason = why
        raise refusal
    wait = limits.tokens.issued(client.client_id)
    if wait > 0:
        refusal = rate_limited(wait, "token-issue-rate")
        refusal.principal = Actor(client.client_id, "agency-app", client.agency)
        raise refusal
    settings = state.settings
    # Audited before the token exists: if the event cannot be written, no token is issued.
    await run_in_threadpool(
        state.vault.audit.record,
        Actor(client.client_id, "agency-app", client.agency, getattr(request.state, "request_id", None)),
        Event("token.issue", reason=f"ttl {settings.token_ttl_seconds}s"),
    )
    access = issuing.issue(
        state.vault.signing,
        settings.issuer,
        settings.audience,
        client.client_id,
        "agency-app",
        client.agency,
        settings.token_ttl_seconds,
    )
    return TokenResponse(access_token=access, expires_in=settings.token_ttl_seconds)


def _record_pressure(request: Request, registry: Registry, pressure: Pressure) -> None:
    """Audit lockout pressure on an existing client (unknown ids are only counted as failures: an
    event for each made-up id would let anyone make the vault write without bound)."""
    try:
        client = registry.client(pressure.client_id)
    except NotFound:
        return
    request.app.state.vault.audit.record(
        Actor(client.client_id, "agency-app", client.agency, getattr(request.state, "request_id", None)),
        Event(
            "token.lockout-pressure",
            outcome="denied",
            reason=f"{pressure.failures} failed client authentications within a minute from {pressure.sources} "
            "sources; correct secrets are still served, wrong ones limited per client and address",
        ),
    )
