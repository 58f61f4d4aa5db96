"""The registrar's representation pages: record a parent (of a minor) or guardian relation, see
it, and end it. The same service and policy as ``POST /v1/representations`` and
``DELETE /v1/representations/{id}``; citizens are named by their vault ids (found with "Find a
citizen"), so no personal value travels in these forms."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.agency_pages import page, refused
from api.web.render import Form, read_form
from vault.errors import Conflict, Refused, ValidationFailed
from vault.representation.service import ACTIONS

router = APIRouter(include_in_schema=False)
KIND_OPTIONS = [
    ("parent", "Parent of a minor", "Ends by itself when the child comes of age (from their date of birth)."),
    ("guardian", "Guardian", "Until the end date you give, or until a registrar ends it."),
]
FIELDS = ("kind", "represented_id", "representative_id", "valid_until")


def _form(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("typed", {"scope": list(ACTIONS)})
    scopes = [(a, a.capitalize(), None) for a in ACTIONS]
    return page(request, who, "agency/representation_new.html", status, kinds=KIND_OPTIONS, scopes=scopes, **context)


@router.get("/agency/representations/new")
def record_form(request: Request, who: Principal = page_user("representations", "create")) -> Response:
    """Record a parent or guardian relation."""
    return _form(request, who)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _record(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed: dict[str, Any] = {k: form.get(k) for k in FIELDS} | {
        "scope": [s for s in form.getlist("scope") if s in ACTIONS]
    }
    errors: dict[str, str] = {}
    if typed["kind"] not in ("parent", "guardian"):
        errors["kind"] = "Choose parent or guardian"
    represented, representative = _uuid(typed["represented_id"]), _uuid(typed["representative_id"])
    if represented is None:
        errors["represented_id"] = "Enter the vault id of the person represented (find it with Find a citizen)"
    if representative is None:
        errors["representative_id"] = "Enter the vault id of the parent or guardian"
    if not typed["scope"]:
        errors["scope"] = "Choose at least one thing they may do"
    until = None
    if typed["valid_until"]:
        try:
            day = datetime.strptime(typed["valid_until"], "%Y-%m-%d").date()
            until = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        except ValueError:
            errors["valid_until"] = "Enter a date like 2030-06-30, or leave it empty"
    if not errors and represented is not None and representative is not None:
        try:
            relation = request.app.state.vault.representation.record(
                actor(request, who), typed["kind"], represented, representative, typed["scope"], None, until
            )
            return RedirectResponse(f"/agency/representations/{relation.id}?done=recorded", status_code=303)
        except ValidationFailed as exc:
            errors = {k if k in typed else "represented_id": v for k, v in exc.problems.items()}
        except Conflict:
            errors = {"representative_id": "This relation is recorded already"}
        except Refused as exc:
            errors = {"represented_id": WHY.get(exc.reason, "This relation cannot be recorded")}
    return _form(request, who, 422, errors=errors, typed=typed)


WHY = {
    "not-a-minor": "A parent relation is for a child under the majority age: record a guardianship instead",
    "self-representation": "A person cannot represent themselves",
}


@router.post("/agency/representations")
async def record(request: Request, who: Principal = page_user("representations", "create")) -> Response:
    """Record it (``representation.record``, audited on both people's logs)."""
    form = await read_form(request)
    return await run_in_threadpool(_record, request, who, form)


@router.get("/agency/representations/{relation_id}")
def relation_page(
    relation_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("representations", "read")
) -> Response:
    """One relation as recorded, with a button to end it."""
    relation = request.app.state.vault.representation.get(str(relation_id))
    rows = [{"key": k.replace("_", " ").capitalize(), "value": str(v)} for k, v in relation.public().items()]
    notice = {"recorded": "The relation was recorded.", "ended": "The relation was ended."}.get(done, "")
    return page(request, who, "agency/representation.html", relation=relation, rows=rows, notice=notice)


def _end(request: Request, who: Principal, relation_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    try:
        request.app.state.vault.representation.end(actor(request, who), str(relation_id))
    except Refused as exc:
        return refused(request, who, exc.reason, 403)
    except Conflict:
        pass  # ended already (a second click): what was asked for
    return RedirectResponse(f"/agency/representations/{relation_id}?done=ended", status_code=303)


@router.post("/agency/representations/{relation_id}/end")
async def end(
    relation_id: uuid.UUID, request: Request, who: Principal = page_user("representations", "delete")
) -> Response:
    """End a parent or guardian relation now (``DELETE /v1/representations/{id}``'s service)."""
    form = await read_form(request)
    return await run_in_threadpool(_end, request, who, relation_id, form)
