"""Web sessions over HTTP: the cookie, rotation, CSRF tokens and the page dependency.

The store (vault/sessions.py) keeps sessions server-side; the browser holds only a random id in
an HttpOnly, SameSite=Lax cookie (Secure and ``__Host-`` prefixed when the service's address is
https). Signing in always starts a new session and ends the one the request carried (no
fixation). Every state-changing form carries a CSRF token: the session's own, or before sign-in a
random one also held in a short pre-session cookie (double submit). ``page_user`` turns a session
into the same Principal the API's bearer tokens give and runs the same Guard checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request, Response

from api.errors import ApiProblem
from api.security.acting import act
from api.security.auth import Guard, Principal
from vault.sessions import SessionStore, WebSession, new_token, same_token

DEMO_ISSUER = "vault-demo"
PRESESSION_SECONDS = 3600
_SESSION = "web_session"  # request.state key: the session found for this request (or None)
_NEW_PRESESSION = "new_presession"  # request.state key: a pre-session token to set as a cookie
_UNKNOWN = object()


@dataclass(frozen=True)
class CookieNames:
    """The cookies' names and flags, fixed by whether the service is reached over https."""

    secure: bool

    @property
    def session(self) -> str:
        """The session cookie (``__Host-`` prefixed under https: host-only, Secure, Path=/)."""
        return "__Host-cv_session" if self.secure else "cv_session"

    @property
    def presession(self) -> str:
        """The pre-session CSRF cookie (sign-in forms)."""
        return "__Host-cv_presession" if self.secure else "cv_presession"


class LoginRequired(Exception):
    """No live session: the page answers 303 to the sign-in page, which returns to ``next``."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__("sign-in required")


def _store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.web_sessions
    return store


def _cookies(request: Request) -> CookieNames:
    names: CookieNames = request.app.state.web_cookies
    return names


def _set(response: Response, names: CookieNames, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=names.secure, httponly=True, samesite="lax")


def start_session(request: Request, response: Response, subject: str, role: str, agency: str, issuer: str) -> None:
    """Sign in: end any session the request carried, start a new one, set its cookie."""
    names, store = _cookies(request), _store(request)
    carried = request.cookies.get(names.session)
    if carried:
        store.end(carried)
    session_id, session = store.create(subject, role, agency, issuer)
    setattr(request.state, _SESSION, session)
    _set(response, names, names.session, session_id, None)  # a browser-session cookie; the server times it out
    response.delete_cookie(names.presession, path="/", secure=names.secure, httponly=True, samesite="lax")


def current_session(request: Request) -> WebSession | None:
    """The request's live session, or None (no cookie, unknown, ended, timed out)."""
    known: object = getattr(request.state, _SESSION, _UNKNOWN)
    if known is None or isinstance(known, WebSession):
        return known
    session_id = request.cookies.get(_cookies(request).session)
    found = _store(request).get(session_id) if session_id else None
    setattr(request.state, _SESSION, found)
    return found


def end_session(request: Request, response: Response) -> WebSession | None:
    """Sign out: end the session on the server and clear the cookie; the session it was, if any."""
    names = _cookies(request)
    session_id = request.cookies.get(names.session)
    ended = _store(request).end(session_id) if session_id else None
    setattr(request.state, _SESSION, None)
    response.delete_cookie(names.session, path="/", secure=names.secure, httponly=True, samesite="lax")
    return ended


def csrf_token(request: Request) -> str:
    """The token this request's forms carry: the session's, or a pre-session one (set as a cookie
    by :func:`set_presession` when it is new)."""
    session = current_session(request)
    if session is not None:
        return session.csrf_token
    names = _cookies(request)
    token = request.cookies.get(names.presession) or getattr(request.state, _NEW_PRESESSION, None)
    if not token or len(token) > 128:
        token = new_token()
        setattr(request.state, _NEW_PRESESSION, token)
    return str(token)


def set_presession(request: Request, response: Response) -> None:
    """Set the pre-session cookie if :func:`csrf_token` made a new token for this request."""
    token = getattr(request.state, _NEW_PRESESSION, None)
    if token:
        names = _cookies(request)
        _set(response, names, names.presession, token, PRESESSION_SECONDS)


def check_csrf(request: Request, form_value: str | None) -> None:
    """Refuse (403 ``csrf``) a form whose token is not this session's (or this browser's pre-session one)."""
    session = current_session(request)
    expected = session.csrf_token if session else request.cookies.get(_cookies(request).presession)
    if not same_token(form_value, expected):
        if getattr(request.state, "audit_action", None) is None:
            request.state.audit_action = "web.form"
        raise ApiProblem(403, "csrf", "The form has expired", "reload the page and send the form again", reason="csrf")


def local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a path on this site (one leading "/", no scheme, host or backslash),
    else ``default``: a ``next`` parameter never redirects elsewhere."""
    if not candidate or len(candidate) > 500 or not candidate.startswith("/") or candidate.startswith("//"):
        return default
    if "\\" in candidate or any(ord(c) < 0x21 or ord(c) == 0x7F for c in candidate):
        return default
    return candidate


def principal_of(session: WebSession) -> Principal:
    """The caller a session stands for, as the API's tokens name callers."""
    return Principal(session.subject, session.role, session.agency, session.issuer)


def page_user(resource: str, action: str, acts: str | None = None) -> Any:
    """Page dependency: the signed-in caller, checked by the Guard exactly as ``auth.require`` checks
    a token (rate limit, live role, Casbin); no session: 303 to the sign-in page. A session that
    acts for someone acts for them here if the relation allows ``acts`` now (api/security/acting.py)."""

    def dependency(request: Request) -> Principal:
        session = current_session(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(local_path(target, "/"))
        request.state.audit_action = f"{resource}.{action}"  # a refusal below is audited under this name
        principal = principal_of(session)
        request.state.principal = principal
        guard: Guard = request.app.state.guard
        guard.limit(principal.limit_key)
        guard.check_role(principal)
        guard.authorize(principal, resource, action)
        return act(request, principal, resource, acts, session.acting_for)

    dependency.authz = (resource, action)  # type: ignore[attr-defined]  # read by the route-coverage test
    return Depends(dependency)


def login_url(next_path: str) -> str:
    """The sign-in page, returning to ``next_path`` afterwards."""
    return "/login?next=" + quote(local_path(next_path), safe="/")
