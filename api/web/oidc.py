"""Sign-in through the configured OpenID provider: GET /login/oidc and GET /login/oidc/callback.

Between the two, the browser keeps the pending sign-in (state, nonce, PKCE code verifier, where to
return) in its own cookie: HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back),
ten minutes, ``__Host-`` prefixed and Secure under https. It holds only fresh random values that
this server generated for this browser and compares with what comes back, so it needs no signature
and no server-side row, and any worker can finish the sign-in:

* someone else's code or state in the victim's browser (login CSRF) fails the state check, and the
  PKCE verifier the code was not issued for fails at the provider;
* the owner editing their own cookie only breaks their own sign-in: the ID token still comes from
  the provider's token endpoint over a direct connection, and ``next`` is checked as a local path;
* the callback clears the cookie whatever the outcome, and the provider takes each code once, so
  a replayed callback is refused.

Every refusal is a problem answer with plain words, audited as ``web.login`` denied with the reason.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.errors import ApiProblem, audit_refusal
from api.security.auth import Principal, actor
from api.security.limits import Refusal
from api.security.oidc import PENDING_SECONDS, OidcClient, OidcConfig, OidcRefused, PendingLogin
from api.security.sessions import local_path, start_session
from api.settings import AppSettings
from api.web.login import charge_sign_in, home_for
from vault.audit.log import Event
from vault.errors import VaultError

ACTION = "web.login"
router = APIRouter(include_in_schema=False)
_build = threading.Lock()


def pending_cookie(settings: AppSettings) -> tuple[str, bool]:
    """The pending sign-in cookie's name and whether it is Secure (the redirect URL is https)."""
    secure = (settings.oidc_redirect_url or "").startswith("https://")
    return ("__Host-cv_oidc" if secure else "cv_oidc"), secure


def oidc_client(request: Request) -> OidcClient:
    """The app's OIDC client, built on first use (nothing is fetched before a sign-in); 404 when off."""
    app = request.app
    client: OidcClient | None = getattr(app.state, "oidc_client", None)
    if client is None:
        with _build:
            client = getattr(app.state, "oidc_client", None)
            if client is None:
                config = OidcConfig.from_settings(app.state.settings)
                if config is None:
                    raise ApiProblem(404, "not-found", "Not found", "no identity provider is configured")
                client = app.state.oidc_client = OidcClient(config)
    return client


def _refuse(request: Request, reason: str, unavailable: bool, clear_cookie: bool) -> ApiProblem:
    """The refusal to raise; a 503 is audited here (api/errors.py audits 401, 403 and 429 itself)."""
    headers: dict[str, str] = {}
    if clear_cookie:
        name, secure = pending_cookie(request.app.state.settings)
        scratch = Response()
        scratch.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        headers["set-cookie"] = scratch.headers["set-cookie"]
    if unavailable:
        audit_refusal(request, Refusal(503, ACTION, reason, "anonymous", "-", "-"))
        return ApiProblem(
            503,
            "sign-in-unavailable",
            "Sign-in is not available",
            "The identity provider could not be reached or did not answer as expected. Try again later.",
            headers,
            reason=reason,
        )
    return ApiProblem(
        401,
        "sign-in-failed",
        "Sign-in failed",
        "We could not sign you in. Start again from the sign-in page.",
        headers,
        reason=reason,
    )


def _limit(request: Request) -> None:
    """Both steps count as sign-in attempts of the caller's address (the demo sign-in's limiter)."""
    request.state.audit_action = ACTION  # any refusal from here on is audited under this name
    charge_sign_in(request)


@router.get("/login/oidc")
def login_oidc(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider with a fresh state, nonce and PKCE challenge."""
    _limit(request)
    client = oidc_client(request)
    try:
        url, pending = client.begin(local_path(next, ""))
    except OidcRefused as exc:
        raise _refuse(request, exc.reason, exc.unavailable, clear_cookie=False) from None
    response = RedirectResponse(url, status_code=303)
    name, secure = pending_cookie(request.app.state.settings)
    response.set_cookie(
        name, pending.encode(), max_age=PENDING_SECONDS, path="/", secure=secure, httponly=True, samesite="lax"
    )
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/login/oidc/callback")
def login_oidc_callback(request: Request) -> Response:
    """Finish the sign-in: state, code exchange with the verifier, ID token; then a new session."""
    _limit(request)
    client = oidc_client(request)
    name, secure = pending_cookie(request.app.state.settings)
    params = {k: v for k, v in request.query_params.items() if k in ("state", "code", "error", "iss")}
    try:
        pending = PendingLogin.decode(request.cookies.get(name), client.now())
        principal = client.finish(pending, params)
        request.app.state.guard.check_role(principal)  # an officer's role must be held now (database)
    except OidcRefused as exc:
        raise _refuse(request, exc.reason, exc.unavailable, clear_cookie=True) from None
    except ApiProblem as exc:  # role not held: 403, audited by the handler with the person's identity
        exc.principal = principal
        raise
    response = RedirectResponse(local_path(pending.next, home_for(principal.role)), status_code=303)
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
    response.headers["cache-control"] = "no-store"
    _audit_success(request, principal)
    start_session(request, response, principal.subject, principal.role, principal.agency, principal.issuer)
    return response


def _audit_success(request: Request, principal: Principal) -> None:
    """No audit, no session: a sign-in that cannot be recorded is refused."""
    try:
        request.app.state.vault.audit.record(actor(request, principal), Event(ACTION, reason="oidc"))
    except VaultError:
        raise _refuse(request, "audit-unavailable", True, clear_cookie=True) from None
