"""The portal's representation pages: "People I act for" (choose whom this session acts for, or
act as yourself again) and "Who can act for me" (see relations, give and withdraw a mandate).

Choosing is only remembered in the session; every later page re-checks the relation (scope, dates,
a child's age) through the same dependency as the API (api/security/acting.py). Giving and
withdrawing a mandate call the same service as ``/v1/me/representations``; while acting for
someone these two pages refuse (``not-delegable``): a mandate is given by the citizen themselves.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.routes.consents import citizen_of
from api.security.acting import SELF
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, current_session, page_user
from api.web.render import Form, read_form, render
from vault.errors import Conflict, Refused, ValidationFailed
from vault.representation import wording
from vault.representation.service import ACTIONS, Relation

router = APIRouter(include_in_schema=False)
SCOPE_WORDS = {
    "view": "See their data and who read it",
    "export": "Download all their data",
    "consents": "Give and withdraw consents, answer requests for consent",
    "requests": "Make rights requests",
}
NOTICES = {"given": "The mandate was recorded.", "withdrawn": "The mandate was withdrawn: it stopped at once."}


def relation_rows(relations: list[Relation], names: dict[str, str], other: str) -> list[list[str]]:
    """Relations as table cells: the other person, kind, what it covers, from, until, status."""
    rows = []
    for r in relations:
        until = "Their majority" if r.kind == "parent" else (r.valid_until or "")[:10] or "Open-ended"
        person = names.get(getattr(r, other), wording.UNKNOWN_NAME)
        scope = ", ".join(r.scope)
        rows.append([person, r.kind.capitalize(), scope, r.valid_from[:10], until, r.status])
    return rows


@router.get("/portal/acting")
def people_i_act_for(request: Request, who: Principal = page_user("me-representations", "read", acts=SELF)) -> Response:
    """The people you may act for now, each with kind, scope and dates, and a button to act for them."""
    service = request.app.state.vault.representation
    choices = service.choices(citizen_of(who))
    names = wording.names(request.app.state.vault.profiles, (r.represented_id for r in choices), actor(request, who))
    session = current_session(request)
    return render(
        request,
        "portal/acting.html",
        choices=choices,
        names=names,
        rows=relation_rows(choices, names, "represented_id"),
        acting_for=session.acting_for if session else None,
    )


def _choose(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    session = current_session(request)
    target = form.get("citizen")[:64] or None
    if session is None:
        return RedirectResponse("/login", status_code=303)
    if target is not None and target != who.subject:
        # Only a relation valid now for at least one action may be chosen; refused (and audited) otherwise.
        chosen = [r for r in request.app.state.vault.representation.choices(who.subject) if r.represented_id == target]
        scope = chosen[0].scope[0] if chosen else "view"
        request.app.state.vault.representation.authorise(
            who.subject, target, scope, getattr(request.state, "request_id", None)
        )
    request.app.state.web_sessions.act_for(session.id_hash, None if target == who.subject else target)
    return RedirectResponse("/portal" if target else "/portal/acting", status_code=303)


@router.post("/portal/acting")
async def choose(request: Request, who: Principal = page_user("me-representations", "read", acts=SELF)) -> Response:
    """Act for the person chosen (an empty choice: as yourself again)."""
    form = await read_form(request)
    return await run_in_threadpool(_choose, request, who, form)


def _mine(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    vault = request.app.state.vault
    mine, _ = vault.representation.of(citizen_of(who))
    names = wording.names(vault.profiles, (r.representative_id for r in mine), actor(request, who))
    context.setdefault("errors", {})
    context.setdefault("typed", {"scope": ["view"]})
    context.setdefault("notice", "")
    scope_options = [(a, SCOPE_WORDS[a], None) for a in ACTIONS]
    rows = relation_rows(mine, names, "representative_id")
    return render(
        request, "portal/representatives.html", status, relations=mine, rows=rows, scopes=scope_options, **context
    )


@router.get("/portal/representatives")
def who_can_act_for_me(
    request: Request, done: str = "", who: Principal = page_user("me-representations", "read")
) -> Response:
    """Parents, guardians and mandates that let someone act for you; give or withdraw a mandate."""
    return _mine(request, who, notice=NOTICES.get(done, ""))


def _day(text: str, end: bool) -> datetime | None:
    if not text:
        return None
    moment = time(23, 59, 59) if end else time(0, 0)
    return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), moment, tzinfo=UTC)


def _give(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    scope = [s for s in form.getlist("scope") if s in ACTIONS]
    text = {k: form.get(k) for k in ("national_id", "valid_from", "valid_until")}
    typed: dict[str, Any] = text | {"scope": scope}
    errors: dict[str, str] = {}
    if not text["national_id"]:
        errors["national_id"] = "Enter the national id of the person you give the mandate to"
    if not scope:
        errors["scope"] = "Choose at least one thing they may do for you"
    dates: dict[str, datetime | None] = {}
    for name in ("valid_from", "valid_until"):
        try:
            dates[name] = _day(text[name], name == "valid_until")
        except ValueError:
            errors[name] = "Enter a date like 2027-06-30, or leave it empty"
    if not errors:
        try:
            request.app.state.vault.representation.give_mandate(
                actor(request, who), citizen_of(who), text["national_id"], scope, *dates.values()
            )
            return RedirectResponse("/portal/representatives?done=given", status_code=303)
        except ValidationFailed as exc:
            errors = {k if k in typed else "national_id": v for k, v in exc.problems.items()}
        except Conflict:
            errors = {"national_id": "You have already given this person a mandate: withdraw it first to change it"}
        except Refused:
            errors = {"national_id": "You cannot give a mandate to yourself"}
    return _mine(request, who, 422, errors=errors, typed=typed)


@router.post("/portal/representatives")
async def give(request: Request, who: Principal = page_user("me-representations", "create")) -> Response:
    """Give a mandate (the same service as ``POST /v1/me/representations``)."""
    form = await read_form(request)
    return await run_in_threadpool(_give, request, who, form)


def _withdraw(request: Request, who: Principal, relation_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    with contextlib.suppress(Conflict):  # withdrawn already (a second click): what was asked for
        request.app.state.vault.representation.withdraw_mandate(actor(request, who), citizen_of(who), str(relation_id))
    return RedirectResponse("/portal/representatives?done=withdrawn", status_code=303)


@router.post("/portal/representatives/{relation_id}/withdraw")
async def withdraw(
    relation_id: uuid.UUID, request: Request, who: Principal = page_user("me-representations", "delete")
) -> Response:
    """Withdraw a mandate you gave (``DELETE /v1/me/representations/{id}``'s service)."""
    form = await read_form(request)
    return await run_in_threadpool(_withdraw, request, who, relation_id, form)
