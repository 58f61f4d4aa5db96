"""Rendering pages and reading forms: one Jinja environment (autoescape on), one form parser.

Forms are ``application/x-www-form-urlencoded`` and parsed with the standard library (no
multipart: no page uploads files), after the page's dependency has authenticated the caller; the
body's size is the app's limit (api/middleware.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.errors import ApiProblem
from api.security.auth import Principal, actor
from api.security.sessions import csrf_token, current_session, set_presession
from vault.audit.review import AccessEntry
from vault.demo_registry import ROLE_NAMES
from vault.representation import wording

HERE = Path(__file__).resolve().parent
SERVICE_NAME = "Citizen Vault"
PORTAL_LINKS = [
    ("/portal/data", "My data"),
    ("/portal/consents", "My consents"),
    ("/portal/requests", "Requests for my consent"),
    ("/portal/service-requests", "My service requests"),
    ("/portal/rights", "My rights requests"),
    ("/portal/access-log", "Who read my data"),
    ("/portal/export", "Download everything"),
    ("/portal/acting", "People I act for"),
    ("/portal/representatives", "Who can act for me"),
]
MAX_FIELDS = 100
LAWFUL_BASES = {  # vault/purposes/service.py's LAWFUL_BASES in plain words
    "consent": "Your consent",
    "legal-obligation": "Legal obligation",
    "public-task": "Public task",
    "vital-interest": "Vital interest",
}
MAX_VALUE = 4000


def environment() -> Environment:
    """The templates' environment: every value is HTML-escaped unless a template says otherwise."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["service_name"] = SERVICE_NAME
    env.globals["role_names"] = ROLE_NAMES
    env.globals["portal_links"] = PORTAL_LINKS
    env.filters["access_row"] = access_row
    env.filters["day"] = day
    env.filters["consent_option"] = consent_option
    env.filters["receipt_row"] = receipt_row
    return env


def day(stamp: str | None) -> str:
    """An ISO time as a date in words (2026-12-04T… -> 4 December 2026); '' for none."""
    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%-d %B %Y")
    except ValueError:
        return stamp[:10]


def access_row(entry: AccessEntry, said: str | None = None) -> list[str]:
    """One line of the citizen's access log as table cells (``said``: a representative's act in words,
    shown as who did what)."""
    when = entry.ts[:16].replace("T", " ") + " UTC"
    fields = ", ".join(f.replace("_", " ") for f in entry.fields) or "-"
    return [
        when,
        "-" if said else entry.agency,
        said or entry.who,
        entry.action,
        fields,
        entry.purpose or "-",
        lawful_basis(entry),
        entry.outcome,
    ]


def lawful_basis(entry: AccessEntry) -> str:
    """The entry's lawful basis in plain words, with the statute its purpose named ("Legal obligation
    under Tax Code s. 12"); without a purpose, on what footing it happened ("You", "Registrar role at ...")."""
    if entry.lawful_basis is None:
        return entry.basis[:1].upper() + entry.basis[1:]
    words = LAWFUL_BASES.get(entry.lawful_basis, entry.lawful_basis.replace("-", " ").capitalize())
    return f"{words} under {entry.statute}" if entry.statute else words


def consent_option(choice: dict[str, str]) -> tuple[str, str, str]:
    """A purpose one may consent to, as a radio option (value, label, hint)."""
    hint = f"Purpose {choice['purpose']}, version {choice['version']}. Data it covers: {choice['categories']}."
    return choice["value"], f"{choice['agency']}: {choice['description']}", hint


def receipt_row(row: dict[str, Any]) -> list[str]:
    """One version of a consent as table cells."""
    return [str(row["version"]), str(row["status"]), day(row["recorded_at"]), str(row["purpose_version"])]


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` with the signed-in person and this request's CSRF token in its context."""
    env: Environment = request.app.state.templates
    session = current_session(request)
    context.setdefault("acting", acting_banner(request))
    html = env.get_template(template).render(
        session=session, csrf_token=csrf_token(request), path=request.url.path, **context
    )
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    set_presession(request, response)
    return response


def acting_banner(request: Request) -> str | None:
    """ "You are acting for X (as their guardian)" while the page acts for someone (the name read in
    an audited read by the representative); None otherwise."""
    who = getattr(request.state, "principal", None)
    if not isinstance(who, Principal) or who.acting_for is None:
        return None
    name = wording.names(request.app.state.vault.profiles, [who.acting_for], actor(request, who))[who.acting_for]
    return f"You are acting for {name} ({wording.AS_WORDS.get(who.relation_kind or '', 'as their representative')})."


class Form:
    """A parsed form: the last value of a name, or all of them (checkboxes)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        """The last value given for ``name`` (stripped), or ``default``."""
        values = self.getlist(name)
        return values[-1].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        """Every value given for ``name``, in order."""
        return [v for k, v in self.pairs if k == name]


async def read_form(request: Request) -> Form:
    """The request's urlencoded form; 415 for another media type, 400 for a malformed one."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise ApiProblem(415, "unsupported-media-type", "Send a form", "send application/x-www-form-urlencoded")
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiProblem(400, "malformed-form", "The form could not be read", "send the form again") from None
    if any(len(k) > 64 or len(v) > MAX_VALUE for k, v in pairs):
        raise ApiProblem(400, "malformed-form", "The form could not be read", "a value is too long")
    return Form(pairs)
