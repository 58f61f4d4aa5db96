"""The web pages: the same app's second face over the same services (docs/web.md).

``install(app, settings)`` adds the session store, the templates, the stylesheet and the page
routes; the development sign-in exists only when ``settings.demo_login`` is set (which the
settings refuse in production).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.security.limits import RateLimiter
from api.security.sessions import CookieNames, LoginRequired, login_url
from api.settings import AppSettings
from api.web import (
    console,
    insights,
    login,
    oidc,
    portal,
    portal_consents,
    portal_interactions,
    portal_representation,
    portal_rights,
)
from api.web.agency import router as agency_router
from api.web.error_pages import ProblemPages, page_roots
from api.web.render import HERE, environment
from vault.sessions import SessionStore


def install(app: FastAPI, settings: AppSettings) -> None:
    """Add the pages to ``app`` (after the API routes: matching scans routes in order)."""
    app.state.web_sessions = SessionStore(
        app.state.vault.data_engine,
        timedelta(seconds=settings.session_idle_seconds),
        timedelta(seconds=settings.session_absolute_seconds),
    )
    app.state.web_cookies = CookieNames(secure=settings.issuer.startswith("https://"))
    app.state.web_login_limiter = RateLimiter(settings.web_logins_per_minute)
    app.state.templates = environment()

    @app.exception_handler(LoginRequired)
    async def _to_login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    routers = [portal.router, portal_consents.router, portal_interactions.router, portal_rights.router]
    routers += [portal_representation.router, login.router]
    routers += [console.router, agency_router]  # the compliance and officers' consoles
    routers += [insights.router]  # the analysts' pages (docs/insights.md)
    routers += [oidc.router]  # OpenID Connect sign-in; answers 404 while no issuer is configured
    if settings.demo_login:
        routers.append(login.demo_router)
    for router in routers:
        app.include_router(router)
    # A refused page request is answered with a page (api/errors.py renders through this hook).
    pages = ProblemPages(page_roots(route for r in routers for route in r.routes))
    app.state.problem_page = app.state.web_pages = pages  # Open311 wraps problem_page (api/open311_render.py)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
