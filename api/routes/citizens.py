"""Profiles: create, read (registrars), correct, erase, exact lookup; and the citizen's own view."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from api.bodies import AuthFirstRoute
from api.bounds import LINE
from api.concurrency import run_short
from api.errors import ApiProblem
from api.routes.consents import citizen_of
from api.schemas import (
    CitizenCorrect,
    CitizenCreate,
    CitizenPublic,
    Created,
    ErasurePublic,
    LookupResult,
    ProvenancePublic,
    SignedBundle,
)
from api.security.auth import Principal, actor, require
from vault import citizen_export
from vault.profiles.records import Profile

router = APIRouter(tags=["citizens"], route_class=AuthFirstRoute)


def _public(profile: Profile) -> CitizenPublic:
    return CitizenPublic(
        id=profile.citizen_id,
        status="erased" if profile.status == "erased" else "active",
        fields=dict(profile.values),
        provenance={
            name: ProvenancePublic(source_agency=p.source_agency, updated_at=p.updated_at, hold_basis=p.hold_basis)
            for name, p in profile.provenance.items()
        },
    )


@router.post("/v1/citizens", status_code=201, response_model=Created)
def create_citizen(
    body: CitizenCreate, request: Request, response: Response, who: Principal = require("citizens", "create")
) -> Created:
    """Create a profile; the caller's agency is recorded as each field's source."""
    citizen = request.app.state.vault.profiles.create(body.fields, who.agency, actor=actor(request, who))
    response.headers["Location"] = f"/v1/citizens/{citizen}"
    return Created(id=citizen)


@router.get("/v1/citizens", response_model=LookupResult)
def lookup_citizens(
    request: Request,
    national_id: Annotated[str | None, Query(max_length=64, pattern=LINE)] = None,
    email: Annotated[str | None, Query(max_length=254, pattern=LINE)] = None,
    who: Principal = require("citizens", "lookup"),
) -> LookupResult:
    """Exact lookup by one searchable field, through its blind index (nothing is decrypted)."""
    given = {k: v for k, v in (("national_id", national_id), ("email", email)) if v is not None}
    if len(given) != 1:
        raise ApiProblem(400, "one-search-field", "Give exactly one search field", "use ?national_id= or ?email=")
    ((field, value),) = given.items()
    return LookupResult(ids=request.app.state.vault.profiles.lookup(field, value, actor=actor(request, who)))


@router.get("/v1/citizens/{citizen_id}", response_model=CitizenPublic)
def read_citizen(
    citizen_id: uuid.UUID,
    request: Request,
    fields: Annotated[
        str | None, Query(max_length=1000, pattern=LINE, description="Comma-separated field names")
    ] = None,
    who: Principal = require("citizens", "read"),
) -> CitizenPublic:
    """A profile (only the fields asked for are decrypted). Other agencies read through grants."""
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return _public(request.app.state.vault.profiles.read(citizen_id, names, actor=actor(request, who)))


@router.patch("/v1/citizens/{citizen_id}", response_model=CitizenPublic)
def correct_citizen(
    citizen_id: uuid.UUID, body: CitizenCorrect, request: Request, who: Principal = require("citizens", "update")
) -> CitizenPublic:
    """Correct fields (null removes an optional field); returns the corrected fields."""
    profiles = request.app.state.vault.profiles
    profiles.correct(citizen_id, body.fields, who.agency, actor=actor(request, who))
    kept = [n for n, v in body.fields.items() if v is not None]
    return _public(profiles.read(citizen_id, kept, actor=actor(request, who)))


@router.delete("/v1/citizens/{citizen_id}", response_model=ErasurePublic)
def erase_citizen(
    citizen_id: uuid.UUID, request: Request, who: Principal = require("citizens", "erase")
) -> ErasurePublic:
    """Erase by crypto-shredding; fields under a legal hold are kept with their basis."""
    report = request.app.state.vault.profiles.erase(citizen_id, actor=actor(request, who))
    return ErasurePublic(
        id=report.citizen_id,
        destroyed_fields=report.destroyed_fields,
        held_fields=report.held_fields,
        already_erased=report.already_erased,
    )


@router.get("/v1/me", response_model=CitizenPublic)
async def me(request: Request, who: Principal = require("me", "read")) -> Response:
    """The calling citizen's own profile, with where each value came from."""
    citizen = uuid.UUID(citizen_of(who))
    vault = request.app.state.vault
    profile = await run_short(request, vault.profiles.read, citizen, actor=actor(request, who), action="me.read")
    # The model is validated once, here; returning it would have FastAPI validate it a second time.
    return Response(_public(profile).model_dump_json(), media_type="application/json")


@router.get(
    "/v1/me/export",
    response_model=SignedBundle,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def my_export(
    request: Request,
    fmt: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="json (default, signed) or csv; without it, Accept: text/csv gives CSV."),
    ] = None,
    who: Principal = require("me", "read", acts="export"),
) -> SignedBundle | Response:
    """Everything held on you, machine-readable and signed: data, consents with receipts, grants, access log."""
    citizen = uuid.UUID(citizen_of(who))
    document, jws = citizen_export.bundle(request.app.state.vault, citizen, actor(request, who))
    if fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", "")):
        return Response(
            citizen_export.as_csv(document),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="my-data.csv"'},
        )
    return SignedBundle(bundle=document, jws=jws)
