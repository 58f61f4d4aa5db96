"""Access grants: agencies request, inspect, revoke and read through them; citizens approve requests."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from api.bodies import AuthFirstRoute
from api.concurrency import run_short
from api.errors import ApiProblem
from api.routes.consents import citizen_of
from api.schemas import ConsentPreviewPublic, GrantApproval, GrantCreate, GrantData, GrantPublic, GrantRequestPublic
from api.security.auth import Principal, actor, require
from vault.catalogue import Value
from vault.grants.approval import KEEP, Keep
from vault.grants.model import Grant
from vault.grants.service import QUICK_PAGE, GrantRequest

router = APIRouter(tags=["grants"], route_class=AuthFirstRoute)


@router.post("/v1/grants", status_code=201, response_model=GrantPublic)
def request_grant(body: GrantCreate, request: Request, who: Principal = require("grants", "create")) -> GrantPublic:
    """Request a grant. Refused with a reason (e.g. consent-required, with the pending request's id)."""
    if (body.citizen_id is None) == (body.citizen_ids is None):
        raise ApiProblem(422, "invalid-request", "The request is not valid", "give citizen_id or citizen_ids")
    ids = [body.citizen_id] if body.citizen_id is not None else list(body.citizen_ids or [])
    req = GrantRequest(
        [str(c) for c in ids], body.purpose, body.fields, body.duration_seconds, body.max_uses, body.case_ref
    )
    return GrantPublic(**request.app.state.vault.grants.request(actor(request, who), req).public())


@router.get("/v1/grants/{grant_id}", response_model=GrantPublic)
def get_grant(grant_id: uuid.UUID, request: Request, who: Principal = require("grants", "read")) -> GrantPublic:
    """One of your agency's grants (another agency's is 404, like an absent one)."""
    return GrantPublic(**request.app.state.vault.grants.get(who.agency, str(grant_id)).public())


@router.post("/v1/grants/{grant_id}/revoke", response_model=GrantPublic)
def revoke_grant(grant_id: uuid.UUID, request: Request, who: Principal = require("grants", "update")) -> GrantPublic:
    """Revoke one of your agency's grants."""
    return GrantPublic(**request.app.state.vault.grants.revoke(actor(request, who), str(grant_id)).public())


@router.get("/v1/grants/{grant_id}/data", response_model=GrantData)
async def read_grant(
    grant_id: uuid.UUID,
    request: Request,
    after: Annotated[uuid.UUID | None, Query(description="The last page's next_after.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    who: Principal = require("grants", "use"),
) -> Response:
    """Exactly the granted fields of the grant's citizens (a page); each call spends one use."""
    vault = request.app.state.vault
    grant, records, next_after = await run_short(
        request, vault.grants.read, actor(request, who), str(grant_id), str(after) if after else None, limit
    )
    if len(records) <= QUICK_PAGE:
        body = page_body(grant, records, next_after)
    else:
        body = await run_in_threadpool(page_body, grant, records, next_after)
    return Response(body, media_type="application/json")


def page_body(grant: Grant, records: list[tuple[str, dict[str, Value] | None]], next_after: str | None) -> bytes:
    """The JSON body of a page (this route's and api/express.py's), serialised by pydantic-core
    straight from plain data: a page holds up to 5,000 records, and validating them against
    GrantData first cost six times the serialisation. The values come from the vault (str or int,
    by the catalogue's decoders); tests pin the bytes to those of the validated model."""
    page = {
        "grant_id": grant.id,
        "purpose": grant.purpose,
        "fields": grant.fields,
        "records": [{"citizen_id": c, "fields": v} for c, v in records],
        "next_after": next_after,
    }
    return to_json(page)


@router.get("/v1/me/grant-requests", response_model=list[GrantRequestPublic])
def my_grant_requests(
    request: Request, who: Principal = require("me-grant-requests", "read")
) -> list[GrantRequestPublic]:
    """Requests waiting for your consent: who asks, for which purpose and fields, and what approving
    makes of your consent (the categories you hold plus those asked, and its expiry)."""
    pending = request.app.state.vault.grants.requests_for(citizen_of(who))
    return [GrantRequestPublic(**p.grant.public(), consent=ConsentPreviewPublic(**asdict(p.consent))) for p in pending]


@router.post("/v1/me/grant-requests/{grant_id}/decline", response_model=GrantPublic)
def decline_grant_request(
    grant_id: uuid.UUID, request: Request, who: Principal = require("me-grant-requests", "update")
) -> GrantPublic:
    """Decline a pending request: it ends (revoked, declined-by-citizen); your consent is unchanged."""
    grant = request.app.state.vault.grants.decline(actor(request, who), citizen_of(who), str(grant_id))
    return GrantPublic(**grant.public())


@router.post("/v1/me/grant-requests/{grant_id}/approve", response_model=GrantPublic)
def approve_grant_request(
    grant_id: uuid.UUID,
    request: Request,
    body: GrantApproval | None = None,
    who: Principal = require("me-grant-requests", "update"),
) -> GrantPublic:
    """Approve a pending request: adds its categories to your consent (a new version, with the
    expiry you choose or the one it has) and activates it."""
    expires_at: datetime | Keep | None = KEEP
    if body is not None and "expires_at" in body.model_fields_set:
        expires_at = body.expires_at  # an Instant: aware and within range (api/bounds.py)
    version = body.purpose_version if body is not None else None
    grant = request.app.state.vault.grants.approve(
        actor(request, who), citizen_of(who), str(grant_id), expires_at, version
    )
    return GrantPublic(**grant.public())
