"""Landing page, sign-in (the development identity provider in demo mode) and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
from api.security.auth import Principal, actor, rate_limited
from api.security.limits import RateLimiter, source_of
from api.security.sessions import (
    DEMO_ISSUER,
    check_csrf,
    current_session,
    end_session,
    local_path,
    principal_of,
    start_session,
)
from api.web.render import Form, read_form, render
from vault.audit.log import Actor, Event
from vault.demo_registry import DemoPerson, demo_people

router = APIRouter(include_in_schema=False)
demo_router = APIRouter(include_in_schema=False)  # installed only in demo mode

HOMES = {
    "citizen": "/portal",
    "compliance-officer": "/console",
    "registrar": "/agency",
    "caseworker": "/agency",
    "analyst": "/insights",
}


def home_for(role: str) -> str:
    """Where a person lands after signing in, when no page asked for them."""
    return HOMES.get(role, "/")


def _people(request: Request) -> list[DemoPerson]:
    cached: list[DemoPerson] | None = getattr(request.app.state, "demo_people", None)
    if cached is None or not any(p.role == "citizen" for p in cached):  # citizens may be imported later
        cached = demo_people(request.app.state.vault.profiles)
        request.app.state.demo_people = cached
    return cached


@router.get("/")
def landing(request: Request) -> Response:
    """What the service is, and where to sign in."""
    return render(request, "landing.html")


@router.get("/login")
def login_page(request: Request, next_path: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """Sign-in: the demo people in demo mode, else the configured identity provider."""
    demo = bool(request.app.state.settings.demo_login)
    people = _people(request) if demo else []
    settings = request.app.state.settings
    provider = settings.oidc_provider_name if settings.oidc_issuer else None
    return render(request, "login.html", demo=demo, people=people, next=local_path(next_path, ""), provider=provider)


def _audit(request: Request, who: Actor, outcome: str, reason: str | None = None) -> None:
    request.app.state.vault.audit.record(who, Event("web.login", outcome=outcome, reason=reason))


def _anonymous(request: Request) -> Actor:
    return Actor("anonymous", "-", "-", getattr(request.state, "request_id", None))


def charge_sign_in(request: Request) -> None:
    """Count a sign-in attempt against the client address (429 past web_logins_per_minute)."""
    limiter: RateLimiter = request.app.state.web_login_limiter
    wait = limiter.take(source_of(request.client.host if request.client else None))
    if wait > 0:
        request.state.audit_action = "web.login"  # the refusal is audited under this name
        raise rate_limited(wait, "sign-in-rate")


def _demo_login(request: Request, form: Form) -> Response:
    request.state.audit_action = "web.login"  # a CSRF refusal is audited under this name
    charge_sign_in(request)
    check_csrf(request, form.get("csrf_token"))
    chosen = next((p for p in _people(request) if p.key == form.get("person")), None)
    if chosen is None:
        _audit(request, _anonymous(request), "denied", "unknown-person")
        raise ApiProblem(400, "unknown-person", "Choose someone from the list", "choose a person from the list")
    who = Principal(chosen.subject, chosen.role, chosen.agency, DEMO_ISSUER)
    guard = request.app.state.guard
    try:
        guard.check_role(who)  # an officer whose role was removed cannot sign in either
    except ApiProblem:
        _audit(request, actor(request, who), "denied", "role-not-held")
        raise
    target = local_path(form.get("next"), home_for(chosen.role))
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, who.subject, who.role, who.agency, DEMO_ISSUER)
    _audit(request, actor(request, who), "allowed")
    return response


@demo_router.post("/login/demo")
async def login_demo(request: Request) -> Response:
    """Sign in as a demo person (development only; CSRF-protected with the pre-session token)."""
    form = await read_form(request)
    return await run_in_threadpool(_demo_login, request, form)


def _logout(request: Request, form: Form) -> Response:
    session = current_session(request)
    response = RedirectResponse("/", status_code=303)
    if session is None:  # nothing to end (expired already): no token to check either
        return response
    request.state.audit_action = "web.logout"
    check_csrf(request, form.get("csrf_token"))
    end_session(request, response)
    request.app.state.vault.audit.record(actor(request, principal_of(session)), Event("web.logout"))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, so its cookie is worthless afterwards."""
    form = await read_form(request)
    return await run_in_threadpool(_logout, request, form)
