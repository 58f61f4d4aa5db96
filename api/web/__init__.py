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
from api.web import login, portal, portal_consents
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

    for router in (portal.router, portal_consents.router, login.router):
        app.include_router(router)
    if settings.demo_login:
        app.include_router(login.demo_router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
