"""Refused page requests answered as pages, not as the API's problem+json (docs/web.md).

api/errors.py keeps deciding every refusal's status and headers and auditing it (once); for a
request to a page route it hands the problem document to the ProblemPage installed here, which
renders error.html with the same status and headers. Which requests are page requests is decided by
route, not by the Accept header: a path whose first segment is one of the page routers' (``/``,
``/portal``, ``/console``, ``/agency``, ``/login``, ``/logout``), so an address under a page that
matches no route is answered as a page too; every API path keeps problem+json.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.security.auth import Principal
from api.security.sessions import current_session
from api.shield import SECURITY_HEADERS
from api.web.login import home_for
from api.web.page_refusals import roles_sentence, words
from api.web.render import render
from vault.demo_registry import ROLE_NAMES

log = logging.getLogger(__name__)


def first_segment(path: str) -> str:
    """``/portal/data`` -> ``portal``; ``/`` -> ``""``."""
    return path.split("/", 2)[1] if path.startswith("/") else path


def page_roots(routes: Iterable[BaseRoute]) -> frozenset[str]:
    """The first path segments of the page routes (the routers api/web installs, with the routers
    they include: FastAPI keeps an included router as a wrapper holding ``original_router``)."""
    roots: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute):
            roots.add(first_segment(route.path))
        elif hasattr(route, "original_router"):
            roots |= page_roots(route.original_router.routes)
    return frozenset(roots)


class ProblemPages:
    """The ProblemPage of api/errors.py for the page routes: error.html, same status and headers."""

    def __init__(self, roots: frozenset[str]) -> None:
        self.roots = roots

    def __call__(self, request: Request, document: dict[str, Any], headers: dict[str, str] | None) -> Response | None:
        """The refusal as a page, or None (not a page request: the API's problem+json)."""
        if first_segment(request.url.path) not in self.roots:
            return None
        try:
            response = render(request, "error.html", document["status"], **self._context(request, document, headers))
        except Exception as exc:  # a page that cannot be drawn: the problem document answers instead
            log.error("could not render an error page", extra={"cause": type(exc).__name__})
            return None
        for name, value in (headers or {}).items():
            response.headers.append(name, value)
        if document["status"] == 500:
            # Starlette answers an unexpected error from outside the app's middleware (its
            # ServerErrorMiddleware), so the headers they add to every answer are set here.
            response.headers["x-request-id"] = str(document.get("request_id") or "")
            for key, setting in SECURITY_HEADERS:
                response.headers[key.decode()] = setting.decode()
        return response

    def _context(self, request: Request, document: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
        status, reason = int(document["status"]), document.get("reason")
        params = {str(k): str(v) for k, v in request.path_params.items()}
        title, sentence = words(status, str(document["type"]).rsplit("/", 1)[-1], reason, params)
        principal: Principal | None = getattr(request.state, "principal", None)
        if reason == "policy" and principal is not None:
            sentence = roles_sentence(principal.role, principal.agency, self._allowed(request))
        retry = (headers or {}).get("Retry-After")
        if status == 429 and retry:
            sentence += f" Wait {retry} seconds, then try again."
        session = current_session(request)
        if status == 401 or (session is None and status in (403, 429)):
            link = ("/login", "Go to the sign-in page")
        elif session is not None:
            link = (home_for(session.role), "Go to your start page")
        else:
            link = ("/", "Go to the start page")
        return {
            "title": title,
            "sentence": sentence,
            "reason": reason,
            "request_id": document.get("request_id"),
            "link": link,
        }

    @staticmethod
    def _allowed(request: Request) -> list[str]:
        """The people's roles the policy lets use this page (its ``resource.action``)."""
        resource, _, action = str(getattr(request.state, "audit_action", "")).partition(".")
        rules = request.app.state.guard.policy.rules()
        return sorted({r[0] for r in rules if r[2] == resource and r[3] == action and r[0] in ROLE_NAMES})
