"""Interactions: the receiving agency's caseworkers record and work them; citizens file, follow and
rate their own (issue 15). Parse, one service call, shape the answer (vault/interactions/service.py)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.bodies import AuthFirstRoute
from api.bounds import Instant, Word
from api.routes.consents import citizen_of
from api.schemas_interactions import (
    Assignment,
    InteractionCreate,
    InteractionPage,
    InteractionPublic,
    InteractionSummaryPublic,
    MyInteractionCreate,
    NoteBody,
    Rating,
    StatusChange,
    StatusFilter,
)
from api.security.auth import Principal, actor, require
from vault.interactions.model import Contact, Interaction, Location, NewInteraction, Search, Summary

router = APIRouter(tags=["interactions"], route_class=AuthFirstRoute)

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def new_interaction(body: MyInteractionCreate, citizen_id: str | None) -> NewInteraction:
    """The service's input from a body."""
    loc, contact = body.location, body.contact
    return NewInteraction(
        service_code=body.service_code,
        text=body.text,
        kind=body.kind,
        channel=body.channel,
        citizen_id=citizen_id,
        attributes=dict(body.attributes),
        location=Location(loc.address, loc.lat, loc.lon) if loc is not None else None,
        area=body.area,
        contact=Contact(contact.name, contact.email, contact.phone) if contact is not None else None,
        attachment=body.attachment,
    )


def summary_public(s: Summary) -> InteractionSummaryPublic:
    """JSON form of a summary."""
    return InteractionSummaryPublic(**asdict(s))


def item_public(item: Interaction) -> InteractionPublic:
    """JSON form of a whole item."""
    data: dict[str, Any] = asdict(item)
    return InteractionPublic(**data)


def page_public(found: tuple[list[Summary], int], limit: int, offset: int) -> InteractionPage:
    """JSON form of a page."""
    return InteractionPage(items=[summary_public(s) for s in found[0]], total=found[1], limit=limit, offset=offset)


# -- the receiving agency ---------------------------------------------------------------------
@router.post("/v1/interactions", status_code=201, response_model=InteractionSummaryPublic)
def record_interaction(
    body: InteractionCreate, request: Request, who: Principal = require("interactions", "create")
) -> InteractionSummaryPublic:
    """Record an interaction for one of your agency's services, on behalf of a citizen or anonymously."""
    citizen = str(body.citizen_id) if body.citizen_id is not None else None
    made = request.app.state.vault.interactions.create(actor(request, who), new_interaction(body, citizen))
    return summary_public(made)


@router.get("/v1/interactions", response_model=InteractionPage)
def list_interactions(
    request: Request,
    status: Annotated[list[StatusFilter] | None, Query(max_length=5)] = None,
    service_code: Word | None = None,
    kind: Word | None = None,
    channel: Word | None = None,
    area: Word | None = None,
    unit: Word | None = None,
    overdue: bool = False,
    created_from: Annotated[Instant | None, Query(alias="from")] = None,
    created_to: Annotated[Instant | None, Query(alias="to")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    who: Principal = require("interactions", "list"),
) -> InteractionPage:
    """Your agency's interactions, newest first, without texts; filters combine. ``overdue=true``:
    the items past a service level (not acknowledged, or not resolved, in time)."""
    search = Search(
        tuple(status or ()),
        service_code,
        kind,
        channel,
        area,
        unit,
        overdue,
        created_from,
        created_to,
        (),
        limit,
        offset,
    )
    return page_public(request.app.state.vault.interactions.search(who.agency, search), limit, offset)


@router.get("/v1/interactions/{interaction_id}", response_model=InteractionPublic)
def get_interaction(
    interaction_id: uuid.UUID, request: Request, who: Principal = require("interactions", "read")
) -> InteractionPublic:
    """One of your agency's items with its texts (audited). Another agency's: 403 other-agency."""
    return item_public(request.app.state.vault.interactions.get(actor(request, who), str(interaction_id)))


@router.post("/v1/interactions/{interaction_id}/status", response_model=InteractionSummaryPublic)
def change_status(
    interaction_id: uuid.UUID, body: StatusChange, request: Request, who: Principal = require("interactions", "update")
) -> InteractionSummaryPublic:
    """Move the item forward: acknowledged, in_progress, resolved, closed (409 invalid-transition)."""
    service = request.app.state.vault.interactions
    return summary_public(service.change_status(actor(request, who), str(interaction_id), body.status, body.note))


@router.post("/v1/interactions/{interaction_id}/notes", response_model=InteractionSummaryPublic)
def add_note(
    interaction_id: uuid.UUID, body: NoteBody, request: Request, who: Principal = require("interactions", "update")
) -> InteractionSummaryPublic:
    """A status note the citizen sees."""
    service = request.app.state.vault.interactions
    return summary_public(service.add_note(actor(request, who), str(interaction_id), body.note))


@router.post("/v1/interactions/{interaction_id}/assign", response_model=InteractionSummaryPublic)
def assign(
    interaction_id: uuid.UUID, body: Assignment, request: Request, who: Principal = require("interactions", "update")
) -> InteractionSummaryPublic:
    """Give the item to a unit of your agency."""
    service = request.app.state.vault.interactions
    return summary_public(service.assign(actor(request, who), str(interaction_id), body.unit, body.note))


# -- the citizen ------------------------------------------------------------------------------
@router.post("/v1/me/interactions", status_code=201, response_model=InteractionSummaryPublic)
def file_interaction(
    body: MyInteractionCreate, request: Request, who: Principal = require("me-interactions", "create")
) -> InteractionSummaryPublic:
    """File a request, complaint, enquiry or feedback; its text is sealed under your key."""
    made = request.app.state.vault.interactions.create(actor(request, who), new_interaction(body, citizen_of(who)))
    return summary_public(made)


@router.get("/v1/me/interactions", response_model=InteractionPage)
def my_interactions(
    request: Request, limit: Limit = 50, offset: Offset = 0, who: Principal = require("me-interactions", "read")
) -> InteractionPage:
    """Your interactions, newest first."""
    found = request.app.state.vault.interactions.mine(citizen_of(who), Search(limit=limit, offset=offset))
    return page_public(found, limit, offset)


@router.get("/v1/me/interactions/{interaction_id}", response_model=InteractionPublic)
def my_interaction(
    interaction_id: uuid.UUID, request: Request, who: Principal = require("me-interactions", "read")
) -> InteractionPublic:
    """One of yours, with its status history and notes."""
    citizen_of(who)
    return item_public(request.app.state.vault.interactions.get(actor(request, who), str(interaction_id)))


@router.post("/v1/me/interactions/{interaction_id}/rating", response_model=InteractionSummaryPublic)
def rate(
    interaction_id: uuid.UUID, body: Rating, request: Request, who: Principal = require("me-interactions", "update")
) -> InteractionSummaryPublic:
    """Rate one of yours, 1 to 5, once it is resolved (409 not-resolved before)."""
    citizen_of(who)
    service = request.app.state.vault.interactions
    return summary_public(service.rate(actor(request, who), str(interaction_id), body.rating, body.comment))
