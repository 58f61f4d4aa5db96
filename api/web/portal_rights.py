"""The citizen portal's rights requests: ask for a correction (from My data), for erasure (told
first what is kept and why), for a restriction or objection; follow each one and withdraw it.

Each page calls the service of its /v1/me/requests route with the same audit; forms follow
post/redirect/get, and a refused form is shown again (422) with an error summary and what was typed.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.routes.consents import citizen_of
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.render import Form, read_form, render
from api.web.rights_words import KINDS, explain, history_rows, outcome, request_rows
from vault.errors import Conflict, Refused, ValidationFailed, VaultError
from vault.requests.handling import RequestDesk
from vault.requests.model import OPEN

router = APIRouter(include_in_schema=False)
NOTICES = {"submitted": "Your request was sent. We must answer within one month.", "withdrawn": "Done."}


def _desk(request: Request) -> RequestDesk:
    found: RequestDesk = request.app.state.vault.requests
    return found


def _why(exc: VaultError, where: str) -> dict[str, str]:
    """A refused submission as form errors (never a value: the domain's messages name fields only)."""
    if isinstance(exc, ValidationFailed):
        return {where: "Not accepted: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in exc.problems.items())}
    return {where: explain(getattr(exc, "reason", None))}


def _send(request: Request, who: Principal, kind: str, where: str, **what: Any) -> Response | dict[str, str]:
    """Submit through the service: the redirect to the new request, or the form errors under ``where``."""
    try:
        made = _desk(request).submit(actor(request, who), citizen_of(who), kind, **what)
    except (ValidationFailed, Refused, Conflict) as exc:
        return _why(exc, where)
    return RedirectResponse(f"/portal/rights/{made.id}?done=submitted", status_code=303)


@router.get("/portal/rights")
def my_requests(request: Request, done: str = "", who: Principal = page_user("me-requests", "read")) -> Response:
    """Your rights requests: kind, status, when sent, when due."""
    found = _desk(request).of_citizen(citizen_of(who))
    rows = request_rows(found, "/portal/rights")
    return render(request, "portal/rights.html", rows=rows, notice=NOTICES.get(done, ""))


@router.get("/portal/rights/correct")
def correction_form(request: Request, field: str = "", who: Principal = page_user("me-requests", "create")) -> Response:
    """Ask for a correction of one item: the proposed value and why."""
    citizen_of(who)
    return _correction_page(request, 200, {"field": field, "value": "", "why": ""}, {})


def _correction_page(request: Request, status: int, typed: dict[str, str], errors: dict[str, str]) -> Response:
    names = list(_desk(request).catalogue.fields)
    options = [(n, n.replace("_", " ").capitalize()) for n in names]
    return render(request, "portal/rights_correct.html", status, options=options, typed=typed, errors=errors)


def _correct(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed = {"field": form.get("field"), "value": form.get("value"), "why": form.get("why")}
    errors: dict[str, str] = {}
    if typed["field"] not in _desk(request).catalogue.fields:
        errors["field"] = "Choose the item to correct"
    if not typed["value"]:
        errors["value"] = "Enter the correct value"
    if len(typed["why"]) > 2000:
        errors["why"] = "Explain in at most 2000 characters"
    if not errors:
        sent = _send(
            request,
            who,
            "rectification",
            "value",
            changes={typed["field"]: typed["value"]},
            message=typed["why"] or None,
        )
        if not isinstance(sent, dict):
            return sent
        errors = sent
    return _correction_page(request, 422, typed, errors)


@router.post("/portal/rights/correct")
async def ask_correction(request: Request, who: Principal = page_user("me-requests", "create")) -> Response:
    """Send the correction request (``POST /v1/me/requests``, kind rectification)."""
    form = await read_form(request)
    return await run_in_threadpool(_correct, request, who, form)


@router.get("/portal/rights/erasure")
def erasure_form(request: Request, who: Principal = page_user("me-requests", "create")) -> Response:
    """Before asking for erasure: what would be erased, what the law keeps and why, what blocks it."""
    preview = _desk(request).erasure_preview(citizen_of(who))
    return render(request, "portal/rights_erasure.html", preview=preview, errors={})


def _erase(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    errors: dict[str, str] = {}
    if form.get("confirm") != "yes":
        errors["confirm"] = "Confirm that you understand what will be kept"
    else:
        sent = _send(request, who, "erasure", "confirm")
        if not isinstance(sent, dict):
            return sent
        errors = sent
    preview = _desk(request).erasure_preview(citizen_of(who))
    return render(request, "portal/rights_erasure.html", 422, preview=preview, errors=errors)


@router.post("/portal/rights/erasure")
async def ask_erasure(request: Request, who: Principal = page_user("me-requests", "create")) -> Response:
    """Send the erasure request (``POST /v1/me/requests``, kind erasure)."""
    form = await read_form(request)
    return await run_in_threadpool(_erase, request, who, form)


def _purpose_options(request: Request) -> list[tuple[str, str, str]]:
    active = [p for p in request.app.state.vault.purposes.all() if p.status == "active"]
    return [(p.code, p.description, f"{p.code}, lawful basis: {p.lawful_basis}") for p in active]


@router.get("/portal/rights/restrict")
def restrict_form(request: Request, who: Principal = page_user("me-requests", "create")) -> Response:
    """Ask to restrict, or object to, the use of your data for purposes."""
    citizen_of(who)
    typed: dict[str, Any] = {"kind": "restriction", "purposes": [], "why": ""}
    return render(request, "portal/rights_restrict.html", options=_purpose_options(request), typed=typed, errors={})


def _restrict(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed: dict[str, Any] = {"kind": form.get("kind"), "purposes": form.getlist("purposes"), "why": form.get("why")}
    errors: dict[str, str] = {}
    if typed["kind"] not in ("restriction", "objection"):
        errors["kind"] = "Choose restrict or object"
    if not typed["purposes"]:
        errors["purposes"] = "Choose at least one purpose"
    if len(typed["why"]) > 2000:
        errors["why"] = "Explain in at most 2000 characters"
    if not errors:
        sent = _send(request, who, typed["kind"], "purposes", purposes=typed["purposes"], message=typed["why"] or None)
        if not isinstance(sent, dict):
            return sent
        errors = sent
    options = _purpose_options(request)
    return render(request, "portal/rights_restrict.html", 422, options=options, typed=typed, errors=errors)


@router.post("/portal/rights/restrict")
async def ask_restriction(request: Request, who: Principal = page_user("me-requests", "create")) -> Response:
    """Send the restriction or objection (``POST /v1/me/requests``)."""
    form = await read_form(request)
    return await run_in_threadpool(_restrict, request, who, form)


@router.get("/portal/rights/{request_id}")
def one_request(
    request_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("me-requests", "read")
) -> Response:
    """One request: status, due date, history, messages, outcome (``GET /v1/me/requests/{id}``)."""
    found = _desk(request).mine(actor(request, who), citizen_of(who), str(request_id))
    in_force = found.status == "complete" and found.kind in ("restriction", "objection")
    return render(
        request,
        "portal/rights_request.html",
        found=found,
        kind=KINDS.get(found.kind, found.kind),
        outcome=outcome(found),
        history=history_rows(found),
        can_withdraw=found.status in OPEN or (in_force and found.history[-1].event != "lifted"),
        notice=NOTICES.get(done, ""),
    )


@router.post("/portal/rights/{request_id}/withdraw")
async def withdraw(
    request_id: uuid.UUID, request: Request, who: Principal = page_user("me-requests", "update")
) -> Response:
    """Withdraw the request, or lift a restriction in force (``POST /v1/me/requests/{id}/withdraw``)."""
    form = await read_form(request)
    check_csrf(request, form.get("csrf_token"))
    await run_in_threadpool(_desk(request).withdraw, actor(request, who), citizen_of(who), str(request_id))
    return RedirectResponse(f"/portal/rights/{request_id}?done=withdrawn", status_code=303)
