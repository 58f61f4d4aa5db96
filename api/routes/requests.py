"""Rights requests: citizens submit, follow and withdraw theirs (/v1/me/requests); the officers of
the agency a request is routed to handle them, compliance officers oversee them (/v1/requests)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.bodies import AuthFirstRoute
from api.bounds import Code
from api.routes.consents import citizen_of
from api.schemas_requests import (
    Assign,
    ErasurePreview,
    Extend,
    Kind,
    MessageCreate,
    OverduePublic,
    ProposedPublic,
    Reason,
    RequestCreate,
    RequestPublic,
)
from api.security.auth import Principal, actor, require
from vault.requests.handling import RequestDesk
from vault.requests.model import RightsRequest

router = APIRouter(tags=["requests"], route_class=AuthFirstRoute)
Status = Literal["open", "submitted", "verified", "approved", "processing", "denied", "complete", "withdrawn"]


def public(found: RightsRequest) -> RequestPublic:
    """The response form of a request."""
    return RequestPublic.model_validate(found.public())


def desk(request: Request) -> RequestDesk:
    """The vault's rights-request service."""
    found: RequestDesk = request.app.state.vault.requests
    return found


# -- the citizen -------------------------------------------------------------------------------
@router.post("/v1/me/requests", status_code=201, response_model=RequestPublic)
def submit(body: RequestCreate, request: Request, who: Principal = require("me-requests", "create")) -> RequestPublic:
    """Ask for access, a rectification, erasure, a restriction or an objection; due in one month.
    A duplicate open request is 409 (duplicate-open-request)."""
    found = desk(request).submit(
        actor(request, who),
        citizen_of(who),
        body.kind,
        changes=body.fields,
        purposes=body.purposes,
        message=body.message,
    )
    return public(found)


@router.get("/v1/me/requests", response_model=list[RequestPublic])
def mine(request: Request, who: Principal = require("me-requests", "read")) -> list[RequestPublic]:
    """Your requests, newest first (history and messages: GET one)."""
    return [public(r) for r in desk(request).of_citizen(citizen_of(who))]


@router.get("/v1/me/requests/erasure-preview", response_model=ErasurePreview)
def erasure_preview(request: Request, who: Principal = require("me-requests", "read")) -> ErasurePreview:
    """What an erasure would destroy and keep (with the law that keeps it), before you ask."""
    return ErasurePreview.model_validate(desk(request).erasure_preview(citizen_of(who)))


@router.get("/v1/me/requests/{request_id}", response_model=RequestPublic)
def one_of_mine(
    request_id: uuid.UUID, request: Request, who: Principal = require("me-requests", "read")
) -> RequestPublic:
    """One of your requests with its history and messages (another's is 404)."""
    return public(desk(request).mine(actor(request, who), citizen_of(who), str(request_id)))


@router.post("/v1/me/requests/{request_id}/withdraw", response_model=RequestPublic)
def withdraw(
    request_id: uuid.UUID, request: Request, who: Principal = require("me-requests", "update")
) -> RequestPublic:
    """Withdraw an open request; a restriction or objection in force is lifted."""
    return public(desk(request).withdraw(actor(request, who), citizen_of(who), str(request_id)))


# -- the officers ------------------------------------------------------------------------------
@router.get("/v1/requests", response_model=list[RequestPublic])
def queue(
    request: Request,
    status: Annotated[Status | None, Query(description="A status, or open for any open one.")] = None,
    kind: Annotated[Kind | None, Query()] = None,
    agency: Annotated[Code | None, Query(description="Routed to this agency (compliance officers).")] = None,
    overdue: Annotated[bool, Query(description="Only open requests past their due date.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    who: Principal = require("requests", "read"),
) -> list[RequestPublic]:
    """Requests routed to your agency (the operator's compliance officers: all), soonest due first."""
    found = desk(request).queue(
        actor(request, who), status=status, kind=kind, agency=agency, overdue=overdue, limit=limit
    )
    return [public(r) for r in found]


@router.get("/v1/requests/overdue", response_model=OverduePublic)
def overdue(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    who: Principal = require("requests", "read"),
) -> OverduePublic:
    """Open requests past their due date: how many, and the most overdue first."""
    count, found = desk(request).overdue(actor(request, who), limit)
    return OverduePublic(count=count, requests=[public(r) for r in found])


@router.get("/v1/requests/{request_id}", response_model=RequestPublic)
def handled(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "read")) -> RequestPublic:
    """One request you may see, with history and messages (audited)."""
    return public(desk(request).handled(actor(request, who), str(request_id)))


@router.get("/v1/requests/{request_id}/proposed", response_model=ProposedPublic)
def proposed(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "update")) -> ProposedPublic:
    """A rectification's proposed values, for deciding it (audited with the field names)."""
    return ProposedPublic(fields=desk(request).proposed(actor(request, who), str(request_id)))


@router.post("/v1/requests/{request_id}/assign", response_model=RequestPublic)
def assign(
    request_id: uuid.UUID, body: Assign, request: Request, who: Principal = require("requests", "update")
) -> RequestPublic:
    """Give the request to an officer."""
    return public(desk(request).assign(actor(request, who), str(request_id), body.assignee))


@router.post("/v1/requests/{request_id}/extend", response_model=RequestPublic)
def extend(
    request_id: uuid.UUID, body: Extend, request: Request, who: Principal = require("requests", "update")
) -> RequestPublic:
    """Extend the deadline (two months at most in all), telling the citizen why."""
    return public(desk(request).extend(actor(request, who), str(request_id), body.months, body.reason))


@router.post("/v1/requests/{request_id}/approve", response_model=RequestPublic)
def approve(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "update")) -> RequestPublic:
    """Approve; then complete it (a rectification: accept it)."""
    return public(desk(request).approve(actor(request, who), str(request_id)))


@router.post("/v1/requests/{request_id}/deny", response_model=RequestPublic)
def deny(
    request_id: uuid.UUID, body: Reason, request: Request, who: Principal = require("requests", "update")
) -> RequestPublic:
    """Deny, with the reason told to the citizen."""
    return public(desk(request).deny(actor(request, who), str(request_id), body.reason))


@router.post("/v1/requests/{request_id}/complete", response_model=RequestPublic)
def complete(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "update")) -> RequestPublic:
    """Carry out an approved request: a restriction comes into force; an erasure is executed
    (registrars of the civil registry only)."""
    return public(desk(request).complete(actor(request, who), str(request_id)))


@router.post("/v1/requests/{request_id}/accept", response_model=RequestPublic)
def accept(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "update")) -> RequestPublic:
    """Accept a rectification: the correction is applied to the profile, the request completes."""
    return public(desk(request).accept(actor(request, who), str(request_id)))


@router.post("/v1/requests/{request_id}/refuse", response_model=RequestPublic)
def refuse(
    request_id: uuid.UUID, body: Reason, request: Request, who: Principal = require("requests", "update")
) -> RequestPublic:
    """Refuse a rectification, with the reason told to the citizen."""
    return public(desk(request).refuse(actor(request, who), str(request_id), body.reason))


@router.post("/v1/requests/{request_id}/messages", response_model=RequestPublic)
def message(
    request_id: uuid.UUID, body: MessageCreate, request: Request, who: Principal = require("requests", "update")
) -> RequestPublic:
    """Write to the citizen on the request (stored encrypted under their key)."""
    return public(desk(request).message(actor(request, who), str(request_id), body.text))


@router.post("/v1/requests/{request_id}/lift", response_model=RequestPublic)
def lift(request_id: uuid.UUID, request: Request, who: Principal = require("requests", "update")) -> RequestPublic:
    """Lift a restriction (or objection) in force."""
    return public(desk(request).lift(actor(request, who), str(request_id)))
