"""Consents: the citizen gives, lists and withdraws (with receipts); agencies and compliance read."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.bodies import AuthFirstRoute
from api.bounds import LINE
from api.errors import ApiProblem
from api.schemas import ConsentCreate, ConsentPublic, ConsentReceiptPublic
from api.security.auth import Principal, actor, agency_scope, require

router = APIRouter(tags=["consents"], route_class=AuthFirstRoute)


def citizen_of(who: Principal) -> str:
    """The vault id of the citizen the request is about: the caller, or whom they act for."""
    try:
        return str(uuid.UUID(who.acting_for or who.subject))
    except ValueError:
        raise ApiProblem(404, "not-found", "Not found", "no profile for this identity") from None


@router.get("/v1/me/consents", response_model=list[ConsentPublic])
def my_consents(request: Request, who: Principal = require("me-consents", "read")) -> list[ConsentPublic]:
    """Your consents, current state (history and receipts under /receipts; status renewal-required:
    the purpose changed since you gave it, confirm it with /renew)."""
    return [ConsentPublic(**c.public()) for c in request.app.state.vault.consents.find(citizen_id=citizen_of(who))]


@router.post("/v1/me/consents", status_code=201, response_model=ConsentPublic)
def give_consent(
    body: ConsentCreate, request: Request, who: Principal = require("me-consents", "create")
) -> ConsentPublic:
    """Consent to an agency using categories of your data for a purpose (optionally until a date)."""
    consent = request.app.state.vault.consents.give(
        citizen_of(who), body.agency, body.purpose, body.categories, body.expires_at, actor=actor(request, who)
    )
    return ConsentPublic(**consent.public())


@router.delete("/v1/me/consents/{consent_id}", response_model=ConsentPublic)
def withdraw_consent(
    consent_id: uuid.UUID, request: Request, who: Principal = require("me-consents", "delete")
) -> ConsentPublic:
    """Withdraw, with one call: the grants that rested on it are revoked at once."""
    consents = request.app.state.vault.consents
    return ConsentPublic(**consents.withdraw(citizen_of(who), str(consent_id), actor=actor(request, who)).public())


@router.post("/v1/me/consents/{consent_id}/renew", response_model=ConsentPublic)
def renew_consent(
    consent_id: uuid.UUID, request: Request, who: Principal = require("me-consents", "create")
) -> ConsentPublic:
    """Confirm a consent after its purpose changed (status renewal-required): same categories and expiry."""
    consents = request.app.state.vault.consents
    return ConsentPublic(**consents.renew(citizen_of(who), str(consent_id), actor=actor(request, who)).public())


@router.get("/v1/me/consents/{consent_id}/receipts", response_model=list[ConsentReceiptPublic])
def consent_receipts(
    consent_id: uuid.UUID, request: Request, who: Principal = require("me-consents", "read")
) -> list[ConsentReceiptPublic]:
    """Every version of the consent, each with its signed receipt (verify with the JWKS)."""
    rows = request.app.state.vault.consents.receipts(citizen_of(who), str(consent_id))
    return [ConsentReceiptPublic(**r) for r in rows]


@router.get("/v1/consents", response_model=list[ConsentPublic])
def agency_consents(
    request: Request,
    citizen_id: uuid.UUID | None = None,
    agency: Annotated[str | None, Query(min_length=3, max_length=64, pattern=LINE)] = None,
    who: Principal = require("consents", "read"),
) -> list[ConsentPublic]:
    """Consents given to your agency (compliance officers of the vault: any agency)."""
    scope = agency_scope(who, agency)
    found = request.app.state.vault.consents.find(citizen_id=str(citizen_id) if citizen_id else None, agency=scope)
    return [ConsentPublic(**c.public()) for c in found]
