"""Representation: citizens give and withdraw mandates and see who acts for whom; registrars
record and end parent and guardian relations. Acting for someone is the ``X-Acting-For`` header
on any ``/v1/me`` route (api/security/acting.py), not a route here."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from api.bodies import AuthFirstRoute
from api.routes.consents import citizen_of
from api.schemas_representation import MandateCreate, MyRepresentations, RelationCreate, RelationPublic
from api.security.auth import Principal, actor, require
from vault.representation.service import Relation

router = APIRouter(tags=["representation"], route_class=AuthFirstRoute)


def _public(relation: Relation) -> RelationPublic:
    return RelationPublic.model_validate(relation.public())


@router.get("/v1/me/representations", response_model=MyRepresentations)
def my_representations(request: Request, who: Principal = require("me-representations", "read")) -> MyRepresentations:
    """Who may act for you (parents, guardians, mandates you gave) and for whom you may act."""
    mine, others = request.app.state.vault.representation.of(citizen_of(who))
    return MyRepresentations(representing_me=[_public(r) for r in mine], i_represent=[_public(r) for r in others])


@router.post("/v1/me/representations", status_code=201, response_model=RelationPublic)
def give_mandate(
    body: MandateCreate, request: Request, response: Response, who: Principal = require("me-representations", "create")
) -> RelationPublic:
    """Give a mandate to another citizen, named by national id, for some actions and dates."""
    relation = request.app.state.vault.representation.give_mandate(
        actor(request, who), citizen_of(who), body.national_id, body.scope, body.valid_from, body.valid_until
    )
    response.headers["Location"] = f"/v1/me/representations/{relation.id}"
    return _public(relation)


@router.delete("/v1/me/representations/{relation_id}", response_model=RelationPublic)
def withdraw_mandate(
    relation_id: uuid.UUID, request: Request, who: Principal = require("me-representations", "delete")
) -> RelationPublic:
    """Withdraw a mandate you gave: it stops at once."""
    service = request.app.state.vault.representation
    return _public(service.withdraw_mandate(actor(request, who), citizen_of(who), str(relation_id)))


@router.post("/v1/representations", status_code=201, response_model=RelationPublic)
def record_relation(
    body: RelationCreate, request: Request, response: Response, who: Principal = require("representations", "create")
) -> RelationPublic:
    """Record a parent (ends at the child's majority) or guardian relation."""
    relation = request.app.state.vault.representation.record(
        actor(request, who),
        body.kind,
        body.represented_id,
        body.representative_id,
        body.scope,
        body.valid_from,
        body.valid_until,
    )
    response.headers["Location"] = f"/v1/representations/{relation.id}"
    return _public(relation)


@router.get("/v1/representations/{relation_id}", response_model=RelationPublic)
def read_relation(
    relation_id: uuid.UUID, request: Request, who: Principal = require("representations", "read")
) -> RelationPublic:
    """One relation, as recorded."""
    return _public(request.app.state.vault.representation.get(str(relation_id)))


@router.delete("/v1/representations/{relation_id}", response_model=RelationPublic)
def end_relation(
    relation_id: uuid.UUID, request: Request, who: Principal = require("representations", "delete")
) -> RelationPublic:
    """End a parent or guardian relation now (a mandate is withdrawn by the citizen who gave it)."""
    return _public(request.app.state.vault.representation.end(actor(request, who), str(relation_id)))
