"""The citizen portal's service requests: list, file a new one, follow it, rate it.

The same services as ``/v1/me/interactions`` (vault/interactions/service.py); forms follow
post/redirect/get and show an error summary with what was typed when refused.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.routes.consents import citizen_of
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web import interaction_forms as forms
from api.web.render import Form, read_form, render
from vault.errors import NotFound
from vault.interactions.errors import InteractionError
from vault.interactions.model import Location, NewInteraction, Search

router = APIRouter(include_in_schema=False)
NOTICES = {"filed": "Your request was received.", "rated": "Thank you for your rating."}
PAGE = 20


@router.get("/portal/service-requests")
def my_requests(
    request: Request,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    who: Principal = page_user("me-interactions", "read"),
) -> Response:
    """Your service requests, complaints and feedback, newest first."""
    service = request.app.state.vault.interactions
    items, total = service.mine(citizen_of(who), Search(limit=PAGE, offset=offset))
    names = {c: s.name for c, s in service.catalogue.services.items()}
    rows = [
        [
            {"text": names.get(i.service_code, i.service_code), "href": f"/portal/service-requests/{i.id}"},
            i.created_at.strftime("%Y-%m-%d"),
            forms.STATUS_WORDS.get(i.status, i.status),
        ]
        for i in items
    ]
    more = offset + PAGE < total
    return render(
        request,
        "portal/service_requests.html",
        rows=rows,
        next=f"/portal/service-requests?offset={offset + PAGE}" if more else None,
        first="/portal/service-requests" if offset else None,
    )


def _form(request: Request, typed: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    catalogue = request.app.state.vault.interactions.catalogue
    chosen = catalogue.services.get(typed.get("service_code", ""))
    return render(
        request,
        "portal/service_request_new.html",
        status,
        services=forms.service_options(catalogue),
        chosen=chosen,
        questions=forms.questions(chosen),
        typed=typed,
        errors=errors,
    )


@router.get("/portal/service-requests/new")
def new_request(
    request: Request,
    service: Annotated[str, Query(max_length=64)] = "",
    who: Principal = page_user("me-interactions", "create"),
) -> Response:
    """File a request: choose the service, then describe it (and answer its questions)."""
    citizen_of(who)
    return _form(request, {"service_code": service}, {})


def _file(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    service = request.app.state.vault.interactions
    typed = {name: form.get(name) for name in ("service_code", "text", "address", "kind")}
    typed |= {k: v for k, v in form.pairs if k.startswith("attr_")}
    chosen = service.catalogue.services.get(typed["service_code"])
    if chosen is None:
        return _form(request, typed, {"service_code": forms.REASONS["unknown-service"]}, 422)
    new = NewInteraction(
        service_code=chosen.code,
        text=typed["text"],
        kind=typed["kind"] or "request",
        channel="web",
        citizen_id=citizen_of(who),
        attributes=forms.answers(chosen, form),
        location=Location(address=typed["address"]) if typed["address"] else None,
    )
    try:
        made = service.create(actor(request, who), new)
    except InteractionError as exc:
        return _form(request, typed, forms.errors_of(exc), 422)
    return RedirectResponse(f"/portal/service-requests/{made.id}?done=filed", status_code=303)


@router.post("/portal/service-requests")
async def file_request(request: Request, who: Principal = page_user("me-interactions", "create")) -> Response:
    """Record the request (``POST /v1/me/interactions``'s service)."""
    form = await read_form(request)
    return await run_in_threadpool(_file, request, who, form)


def _not_found(request: Request) -> Response:
    return render(
        request,
        "error.html",
        404,
        title="Not found",
        sentence="You have no such request.",
        link=("/portal/service-requests", "Your service requests"),
        reason="not-found",
        request_id=getattr(request.state, "request_id", None),
    )


def _detail(
    request: Request, who: Principal, iid: uuid.UUID, done: str, errors: dict[str, str], status: int
) -> Response:
    service = request.app.state.vault.interactions
    try:
        item = service.get(actor(request, who), str(iid))
    except NotFound:
        return _not_found(request)
    return render(
        request,
        "portal/service_request.html",
        status,
        item=item,
        rows=forms.detail_rows(item, service.catalogue),
        history=forms.history_rows(item, citizen=True),
        words=forms.STATUS_WORDS,
        notice=NOTICES.get(done, ""),
        errors=errors,
    )


@router.get("/portal/service-requests/{interaction_id}")
def my_request(
    interaction_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("me-interactions", "read")
) -> Response:
    """One of your requests: its status history and notes, and a rating once resolved (the read is audited)."""
    citizen_of(who)
    return _detail(request, who, interaction_id, done, {}, 200)


def _rate(request: Request, who: Principal, iid: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    text = form.get("rating")
    rating = int(text) if text.isdigit() and len(text) == 1 else 0
    try:
        request.app.state.vault.interactions.rate(actor(request, who), str(iid), rating, form.get("comment") or None)
    except InteractionError as exc:
        return _detail(request, who, iid, "", {"rating": forms.REASONS.get(exc.reason, "Not accepted")}, 422)
    except NotFound:
        return _not_found(request)
    return RedirectResponse(f"/portal/service-requests/{iid}?done=rated", status_code=303)


@router.post("/portal/service-requests/{interaction_id}/rating")
async def rate_request(
    interaction_id: uuid.UUID, request: Request, who: Principal = page_user("me-interactions", "update")
) -> Response:
    """Rate a resolved request (``POST /v1/me/interactions/{id}/rating``'s service)."""
    citizen_of(who)
    form = await read_form(request)
    return await run_in_threadpool(_rate, request, who, interaction_id, form)
