"""POST /v1/token: OAuth 2.0 client credentials for agency applications."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from api.errors import ApiProblem
from api.schemas import TokenResponse
from api.security import issuing
from vault.audit.log import Actor, Event

router = APIRouter(tags=["identity"])
MAX_FORM_BYTES = 4096


def _invalid_client() -> ApiProblem:
    return ApiProblem(
        401,
        "invalid-client",
        "Client authentication failed",
        "unknown client, wrong secret, or revoked client",
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
    if not client_id or not secret:
        raise _invalid_client()
    state = request.app.state
    state.guard.limit(f"token|{client_id[:64]}")
    state.guard.limit(f"token-ip|{request.client.host if request.client else '-'}")
    client = state.vault.registry.authenticate_client(client_id, secret)
    if client is None or not state.vault.registry.client_is_active(client.client_id):
        refusal = _invalid_client()
        refusal.principal = Actor(client_id[:64], "agency-app", "-")
        raise refusal
    settings = state.settings
    # Audited before the token exists: if the event cannot be written, no token is issued.
    state.vault.audit.record(
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
