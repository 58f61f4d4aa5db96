"""Registry for administrators: agencies, API clients, role assignments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api.bodies import AuthFirstRoute
from api.bounds import LINE, Word
from api.schemas import (
    AgencyCreate,
    AgencyPublic,
    AgencyUpdate,
    ClientCreate,
    ClientCreated,
    ClientPublic,
    RoleAssignmentBody,
)
from api.security.auth import Principal, actor, require
from vault.registry import OPERATOR_AGENCY, Client

router = APIRouter(tags=["registry"], route_class=AuthFirstRoute)
AgencyFilter = Annotated[str | None, Query(min_length=3, max_length=64, pattern=LINE)]
AgencyCode = Annotated[str, Path(min_length=3, max_length=64, pattern=LINE)]
ClientId = Annotated[str, Path(min_length=1, max_length=128, pattern=LINE)]


def _scope(request: Request, who: Principal, resource: str, action: str, agency: str | None) -> str | None:
    """The agency a listing or change concerns; checked against own-agency rules."""
    target = agency or (None if who.agency == OPERATOR_AGENCY else who.agency)
    request.app.state.guard.authorize(who, resource, action, target or who.agency)
    return target


@router.get("/v1/agencies", response_model=list[AgencyPublic])
def list_agencies(request: Request, who: Principal = require("agencies", "read")) -> list[AgencyPublic]:
    """Every registered agency."""
    return [
        AgencyPublic(code=a.code, name=a.name, status=a.status) for a in request.app.state.vault.registry.agencies()
    ]


@router.post("/v1/agencies", status_code=201, response_model=AgencyPublic)
def create_agency(body: AgencyCreate, request: Request, who: Principal = require("agencies", "create")) -> AgencyPublic:
    """Register an agency."""
    a = request.app.state.vault.registry.create_agency(body.code, body.name, actor=actor(request, who))
    return AgencyPublic(code=a.code, name=a.name, status=a.status)


@router.patch("/v1/agencies/{code}", response_model=AgencyPublic)
def update_agency(
    code: AgencyCode, body: AgencyUpdate, request: Request, who: Principal = require("agencies", "update")
) -> AgencyPublic:
    """Retire or reactivate an agency (its clients and officers stop working while retired)."""
    a = request.app.state.vault.registry.set_agency_status(code, body.status, actor=actor(request, who))
    return AgencyPublic(code=a.code, name=a.name, status=a.status)


def _fields(c: Client) -> dict[str, Any]:
    """A client's public members (never its secret or its hash)."""
    return {
        "client_id": c.client_id,
        "agency": c.agency,
        "name": c.name,
        "status": c.status,
        "created_by": c.created_by,
        "approved_by": c.approved_by,
        "secret_expires_at": c.secret_expires_at,
    }


@router.get("/v1/clients", response_model=list[ClientPublic])
def list_clients(
    request: Request, agency: AgencyFilter = None, who: Principal = require("clients", "read")
) -> list[ClientPublic]:
    """API clients of an agency (your own unless you administer the vault)."""
    target = _scope(request, who, "clients", "read", agency)
    return [ClientPublic(**_fields(c)) for c in request.app.state.vault.registry.clients(target)]


@router.post("/v1/clients", status_code=201, response_model=ClientCreated)
def create_client(body: ClientCreate, request: Request, who: Principal = require("clients", "create")) -> ClientCreated:
    """A new client, pending until a different admin approves it; the secret is in this response only."""
    _scope(request, who, "clients", "create", body.agency)
    client, secret = request.app.state.vault.registry.create_client(body.agency, body.name, actor=actor(request, who))
    return ClientCreated(**_fields(client), client_secret=secret)


@router.post("/v1/clients/{client_id}/approve", response_model=ClientPublic)
def approve_client(
    client_id: ClientId, request: Request, who: Principal = require("clients", "approve")
) -> ClientPublic:
    """Approve a pending client (its agency's admins or the vault's; never the one who created or re-keyed it)."""
    registry = request.app.state.vault.registry
    _scope(request, who, "clients", "approve", registry.client(client_id).agency)
    return ClientPublic(**_fields(registry.approve_client(client_id, actor=actor(request, who))))


@router.post("/v1/clients/{client_id}/secret", status_code=201, response_model=ClientCreated)
def rotate_secret(
    client_id: ClientId, request: Request, who: Principal = require("clients", "rotate")
) -> ClientCreated:
    """A new secret, in this response only; the old one stops now and the client waits for approval again."""
    registry = request.app.state.vault.registry
    _scope(request, who, "clients", "rotate", registry.client(client_id).agency)
    client, secret = registry.rotate_secret(client_id, actor=actor(request, who))
    return ClientCreated(**_fields(client), client_secret=secret)


@router.delete("/v1/clients/{client_id}", status_code=204)
def revoke_client(client_id: ClientId, request: Request, who: Principal = require("clients", "delete")) -> None:
    """Revoke a client; its tokens are refused from the next request on."""
    registry = request.app.state.vault.registry
    _scope(request, who, "clients", "delete", registry.client(client_id).agency)
    registry.revoke_client(client_id, actor=actor(request, who))


@router.get("/v1/role-assignments", response_model=list[RoleAssignmentBody])
def list_roles(
    request: Request, agency: AgencyFilter = None, who: Principal = require("role-assignments", "read")
) -> list[RoleAssignmentBody]:
    """Who holds which role (your own agency unless you administer the vault)."""
    target = _scope(request, who, "role-assignments", "read", agency)
    return [
        RoleAssignmentBody(subject=r.subject, agency=r.agency, role=r.role)
        for r in request.app.state.vault.registry.assignments(target)
    ]


@router.post("/v1/role-assignments", status_code=201, response_model=RoleAssignmentBody)
def assign_role(
    body: RoleAssignmentBody, request: Request, who: Principal = require("role-assignments", "create")
) -> RoleAssignmentBody:
    """Give a subject a role in an agency."""
    _scope(request, who, "role-assignments", "create", body.agency)
    r = request.app.state.vault.registry.assign(body.subject, body.agency, body.role, actor=actor(request, who))
    return RoleAssignmentBody(subject=r.subject, agency=r.agency, role=r.role)


@router.delete("/v1/role-assignments", status_code=204)
def remove_role(
    request: Request,
    subject: Annotated[str, Query(min_length=1, max_length=256, pattern=LINE)],
    agency: Annotated[str, Query(min_length=3, max_length=64, pattern=LINE)],
    role: Annotated[Word, Query(max_length=32)],
    who: Principal = require("role-assignments", "delete"),
) -> None:
    """Remove a role: effective on the subject's next request, in every worker."""
    _scope(request, who, "role-assignments", "delete", agency)
    request.app.state.vault.registry.unassign(subject, agency, role, actor=actor(request, who))
