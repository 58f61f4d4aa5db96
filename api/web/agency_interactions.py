"""The caseworker's interactions queue: the receiving agency's items, filtered, with the overdue
ones flagged; an item's detail (an audited read of its text); acknowledge, start, resolve, close
with a note; assign to a unit; add a note.

Each page calls the service of the matching API route (``GET /v1/interactions``,
``GET /v1/interactions/{id}``, ``POST .../status``, ``.../assign``, ``.../notes``) after the same
policy check. Forms are CSRF-checked and follow post/redirect/get.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web import interaction_forms as forms
from api.web.agency_pages import page, refused
from api.web.render import Form, read_form
from vault.errors import NotFound, Refused
from vault.interactions.errors import InteractionError
from vault.interactions.model import STATUSES, Search

router = APIRouter(include_in_schema=False)
PAGE = 50
NOTICES = {"status": "The status was changed.", "assign": "The request was assigned.", "note": "The note was added."}
Short = Annotated[str, Query(max_length=64)]


@router.get("/agency/interactions")
def queue(
    request: Request,
    status: Short = "",
    service: Short = "",
    overdue: Short = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    who: Principal = page_user("interactions", "list"),
) -> Response:
    """The agency's items, newest first, filtered by status, service and lateness."""
    interactions = request.app.state.vault.interactions
    search = Search(
        statuses=(status,) if status in STATUSES else (),
        service_code=service or None,
        overdue=overdue == "yes",
        limit=PAGE,
        offset=offset,
    )
    items, total = interactions.search(who.agency, search)
    names = {c: s.name for c, s in interactions.catalogue.services.items()}
    rows = [
        [
            {"text": names.get(i.service_code, i.service_code), "href": f"/agency/interactions/{i.id}"},
            i.created_at.strftime("%Y-%m-%d %H:%M"),
            i.channel,
            i.area or "",
            i.unit or "",
            forms.STATUS_WORDS.get(i.status, i.status),
            "Overdue" if i.overdue else "",
        ]
        for i in items
    ]
    query = f"status={status}&service={service}&overdue={overdue}"
    return page(
        request,
        who,
        "agency/interactions.html",
        rows=rows,
        total=total,
        typed={"status": status, "service": service, "overdue": overdue},
        statuses=[("", "Any status"), *((s, forms.STATUS_WORDS[s]) for s in STATUSES)],
        services=[("", "Any service"), *forms.service_options(interactions.catalogue, who.agency)[1:]],
        next=f"/agency/interactions?{query}&offset={offset + PAGE}" if offset + PAGE < total else None,
        first=f"/agency/interactions?{query}" if offset else None,
    )


def _detail(request: Request, who: Principal, iid: uuid.UUID, status: int = 200, **context: Any) -> Response:
    interactions = request.app.state.vault.interactions
    try:
        item = interactions.get(actor(request, who), str(iid))
    except NotFound:
        return refused(request, who, "not-found", 404)
    except Refused as exc:
        return refused(request, who, exc.reason, 403)
    context.setdefault("errors", {})
    context.setdefault("notice", "")
    return page(
        request,
        who,
        "agency/interaction.html",
        status,
        item=item,
        rows=forms.detail_rows(item, interactions.catalogue),
        history=forms.history_rows(item, citizen=False),
        moves=forms.next_statuses(item.summary.status),
        units=[("", "Choose a unit"), *((u, u) for u in interactions.catalogue.units.get(who.agency, ()))],
        words=forms.STATUS_WORDS,
        **context,
    )


@router.get("/agency/interactions/{interaction_id}")
def interaction_page(
    interaction_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("interactions", "read")
) -> Response:
    """One item with its text, contact details and history (the read is audited)."""
    return _detail(request, who, interaction_id, notice=NOTICES.get(done, ""))


def _change(request: Request, who: Principal, iid: uuid.UUID, form: Form, what: str) -> Response:
    check_csrf(request, form.get("csrf_token"))
    interactions = request.app.state.vault.interactions
    note = form.get("note") or None
    try:
        if what == "status":
            interactions.change_status(actor(request, who), str(iid), form.get("status"), note)
        elif what == "assign":
            interactions.assign(actor(request, who), str(iid), form.get("unit"), note)
        else:
            interactions.add_note(actor(request, who), str(iid), form.get("note"))
    except NotFound:
        return refused(request, who, "not-found", 404)
    except Refused as exc:
        return refused(request, who, exc.reason, 403)
    except InteractionError as exc:
        field = {"status": "note", "assign": "unit", "note": "note"}[what]
        if exc.reason == "text-too-long":
            field = "note"
        errors = {field: forms.REASONS.get(exc.reason, "Not accepted")}
        return _detail(request, who, iid, 409 if exc.reason == "invalid-transition" else 422, errors=errors)
    return RedirectResponse(f"/agency/interactions/{iid}?done={what}", status_code=303)


@router.post("/agency/interactions/{interaction_id}/status")
async def change_status(
    interaction_id: uuid.UUID, request: Request, who: Principal = page_user("interactions", "update")
) -> Response:
    """Acknowledge, start, resolve or close, with an optional note (``POST /v1/interactions/{id}/status``)."""
    form = await read_form(request)
    return await run_in_threadpool(_change, request, who, interaction_id, form, "status")


@router.post("/agency/interactions/{interaction_id}/assign")
async def assign(
    interaction_id: uuid.UUID, request: Request, who: Principal = page_user("interactions", "update")
) -> Response:
    """Give the item to a unit (``POST /v1/interactions/{id}/assign``)."""
    form = await read_form(request)
    return await run_in_threadpool(_change, request, who, interaction_id, form, "assign")


@router.post("/agency/interactions/{interaction_id}/notes")
async def add_note(
    interaction_id: uuid.UUID, request: Request, who: Principal = page_user("interactions", "update")
) -> Response:
    """A note the citizen sees (``POST /v1/interactions/{id}/notes``)."""
    form = await read_form(request)
    return await run_in_threadpool(_change, request, who, interaction_id, form, "note")
