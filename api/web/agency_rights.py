"""The officers' queue of rights requests routed to their agency (``/agency/rights``): open a
request, see a correction's proposed value only when deciding it, accept (the correction is applied
through the profile service) or refuse with a reason; approve, deny, extend, complete, lift.

Each page calls the service of its /v1/requests route with the same audit; every refusal is
explained in plain words (api/web/rights_words.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.agency_pages import page
from api.web.render import Form, read_form
from api.web.rights_words import KINDS, explain, history_rows, outcome, request_rows
from vault.errors import Conflict, Refused, ValidationFailed
from vault.requests.handling import RequestDesk
from vault.requests.model import RightsRequest

router = APIRouter(include_in_schema=False)
ACTIONS = ("approve", "deny", "accept", "refuse", "complete", "extend", "lift")
DONE = {a: "Done." for a in ACTIONS}


def _desk(request: Request) -> RequestDesk:
    found: RequestDesk = request.app.state.vault.requests
    return found


@router.get("/agency/rights")
def queue(request: Request, who: Principal = page_user("requests", "read")) -> Response:
    """Open requests routed to this agency, soonest due first."""
    found = _desk(request).queue(actor(request, who), status="open", limit=200)
    return page(request, who, "agency/rights.html", rows=request_rows(found, "/agency/rights"))


def _request_page(
    request: Request, who: Principal, found: RightsRequest, status: int = 200, **context: Any
) -> Response:
    context.setdefault("proposed", None)
    context.setdefault("errors", {})
    context.setdefault("notice", "")
    return page(
        request,
        who,
        "agency/rights_request.html",
        status,
        found=found,
        kind=KINDS.get(found.kind, found.kind),
        outcome=outcome(found),
        history=history_rows(found),
        **context,
    )


@router.get("/agency/rights/{request_id}")
def one_request(
    request_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("requests", "read")
) -> Response:
    """One request with its history and messages (audited as ``requests.read``)."""
    found = _desk(request).handled(actor(request, who), str(request_id))
    return _request_page(request, who, found, notice=DONE.get(done, ""))


@router.get("/agency/rights/{request_id}/decide")
def decide(request_id: uuid.UUID, request: Request, who: Principal = page_user("requests", "update")) -> Response:
    """A correction's proposed values, shown to the officer deciding it (audited with the field names)."""
    proposed = _desk(request).proposed(actor(request, who), str(request_id))
    found = _desk(request).handled(actor(request, who), str(request_id))
    rows = [
        {"key": name.replace("_", " ").capitalize(), "value": "(remove)" if v is None else v}
        for name, v in proposed.items()
    ]
    return _request_page(request, who, found, proposed=rows)


def _act(request: Request, who: Principal, request_id: str, action: str, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    desk, by = _desk(request), actor(request, who)
    reason = form.get("reason")
    steps: dict[str, Callable[[], RightsRequest]] = {
        "approve": lambda: desk.approve(by, request_id),
        "deny": lambda: desk.deny(by, request_id, reason),
        "accept": lambda: desk.accept(by, request_id),
        "refuse": lambda: desk.refuse(by, request_id, reason),
        "complete": lambda: desk.complete(by, request_id),
        "extend": lambda: desk.extend(by, request_id, 2 if form.get("months") == "2" else 1, form.get("extend_reason")),
        "lift": lambda: desk.lift(by, request_id),
    }
    try:
        steps[action]()
    except ValidationFailed:
        where = "extend_reason" if action == "extend" else "reason"
        errors = {where: "Give the reason the citizen will read (at most 2000 characters)"}
    except (Refused, Conflict) as exc:
        errors = {"reason": explain(getattr(exc, "reason", None))}
    else:
        return RedirectResponse(f"/agency/rights/{request_id}?done={action}", status_code=303)
    found = desk.handled(by, request_id)
    return _request_page(request, who, found, 422, errors=errors)


@router.post("/agency/rights/{request_id}/{action}")
async def act(
    request_id: uuid.UUID, action: str, request: Request, who: Principal = page_user("requests", "update")
) -> Response:
    """One step on the request (the service of ``POST /v1/requests/{id}/{action}``)."""
    if action not in ACTIONS:
        return page(request, who, "agency/refused.html", 404, reason="not-found", sentence="No such step.")
    form = await read_form(request)
    return await run_in_threadpool(_act, request, who, str(request_id), action, form)
