"""Purposes registry (admins write; officers, apps, compliance and citizens read) and records of processing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from api.bodies import AuthFirstRoute
from api.bounds import Code
from api.errors import ApiProblem
from api.schemas import PurposeCreate, PurposePublic, PurposeUpdate
from api.security.auth import Principal, actor, require

router = APIRouter(tags=["purposes"], route_class=AuthFirstRoute)


@router.get("/v1/purposes", response_model=list[PurposePublic])
def list_purposes(request: Request, who: Principal = require("purposes", "read")) -> list[PurposePublic]:
    """Every registered purpose, with its categories, lawful basis, retention and agencies."""
    return [PurposePublic(**p.public()) for p in request.app.state.vault.purposes.all()]


@router.post("/v1/purposes", status_code=201, response_model=PurposePublic)
def create_purpose(
    body: PurposeCreate, request: Request, who: Principal = require("purposes", "create")
) -> PurposePublic:
    """Register a purpose (a non-consent lawful basis needs its statute reference)."""
    p = request.app.state.vault.purposes.create(
        body.code,
        body.description,
        body.categories,
        body.lawful_basis,
        body.statute,
        body.retention_days,
        body.agencies,
        actor=actor(request, who),
    )
    return PurposePublic(**p.public())


@router.patch("/v1/purposes/{code}", response_model=PurposePublic)
def update_purpose(
    code: Annotated[Code, Path()], body: PurposeUpdate, request: Request, who: Principal = require("purposes", "update")
) -> PurposePublic:
    """Retire a purpose (every grant for it is revoked at once), or change it (a material change is
    a new version, and consents given for the old one need renewal)."""
    purposes = request.app.state.vault.purposes
    changes = body.model_dump(exclude_none=True, exclude={"status"})
    if (body.status == "retired") == bool(changes):
        detail = "give status 'retired' alone, or the members to change"
        raise ApiProblem(422, "invalid-request", "The request is not valid", detail)
    if body.status == "retired":
        return PurposePublic(**purposes.retire(code[:64], actor=actor(request, who)).public())
    return PurposePublic(**purposes.update(code[:64], actor=actor(request, who), **changes).public())


@router.get("/v1/records-of-processing")
def records_of_processing(
    request: Request, who: Principal = require("records-of-processing", "read")
) -> dict[str, Any]:
    """GDPR Art. 30: per purpose, the categories, recipients (agencies), lawful basis and retention."""
    return {"controller": "Citizen Vault operator", "records": request.app.state.vault.purposes.records_of_processing()}
