"""The citizen portal's consents: list, give, receipts, withdraw; requests waiting for consent.

Forms follow post/redirect/get: a refused form is shown again (422) with an error summary and
what was typed; an accepted one redirects to the list with a confirmation. Declining a request is
a declined request ends at once (the same service as ``POST /v1/me/grant-requests/{id}/decline``).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.routes.consents import citizen_of
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.render import Form, read_form, render
from vault.errors import Conflict, Refused, ValidationFailed
from vault.grants.approval import KEEP, Keep

router = APIRouter(include_in_schema=False)
NOTICES = {"given": "Your consent was recorded.", "withdrawn": "Your consent was withdrawn.", "approved": ""}


def _purposes(request: Request) -> dict[str, Any]:
    return {p.code: p for p in request.app.state.vault.purposes.all()}


def _choices(request: Request) -> list[dict[str, str]]:
    """Every (agency, purpose) a citizen may consent to: active purposes resting on consent."""
    return [
        {
            "value": f"{agency}|{p.code}",
            "agency": agency,
            "purpose": p.code,
            "description": p.description,
            "version": str(p.version),
            "categories": ", ".join(p.categories),
        }
        for p in _purposes(request).values()
        if p.status == "active" and p.lawful_basis == "consent"
        for agency in p.agencies
    ]


def _end_of(day: str) -> datetime | None:
    """The end of a day given as YYYY-MM-DD, in UTC; None when blank; ValueError when malformed."""
    if not day:
        return None
    return datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time(23, 59, 59), tzinfo=UTC)


@router.get("/portal/consents")
def my_consents(request: Request, done: str = "", who: Principal = page_user("me-consents", "read")) -> Response:
    """Your consents, each with its purpose in plain words."""
    consents = request.app.state.vault.consents.find(citizen_id=citizen_of(who))
    return render(
        request, "portal/consents.html", consents=consents, purposes=_purposes(request), notice=NOTICES.get(done, "")
    )


@router.get("/portal/consents/new")
def consent_form(request: Request, who: Principal = page_user("me-consents", "create")) -> Response:
    """Give a consent: choose the agency and purpose, optionally an end date."""
    citizen_of(who)
    return render(request, "portal/consent_new.html", choices=_choices(request), errors={}, typed={})


def _give(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed = {"choice": form.get("choice"), "expires": form.get("expires")}
    errors: dict[str, str] = {}
    agency, _, purpose = typed["choice"].partition("|")
    if not agency or not purpose:
        errors["choice"] = "Choose what you consent to"
    try:
        expires = _end_of(typed["expires"])
    except ValueError:
        errors["expires"] = "Enter a date like 2027-06-30, or leave it empty"
    if not errors:
        try:
            request.app.state.vault.consents.give(
                citizen_of(who), agency, purpose, None, expires, actor=actor(request, who)
            )
            return RedirectResponse("/portal/consents?done=given", status_code=303)
        except ValidationFailed as exc:
            field = {"expires_at": "expires"}
            errors = {field.get(k, "choice"): _plain(k, v) for k, v in exc.problems.items()}
    choices = _choices(request)
    return render(request, "portal/consent_new.html", 422, choices=choices, errors=errors, typed=typed)


def _plain(field: str, why: str) -> str:
    if field == "expires_at":
        return "The end date must be in the future"
    return "You cannot consent to this: choose another" if field in ("purpose", "agency") else why


@router.post("/portal/consents")
async def give_consent(request: Request, who: Principal = page_user("me-consents", "create")) -> Response:
    """Record the consent (``me-consents.create``, the same service as ``POST /v1/me/consents``)."""
    form = await read_form(request)
    return await run_in_threadpool(_give, request, who, form)


@router.get("/portal/consents/{consent_id}/receipts")
def receipts(consent_id: uuid.UUID, request: Request, who: Principal = page_user("me-consents", "read")) -> Response:
    """Every version of one consent, each with its signed receipt."""
    consents = request.app.state.vault.consents
    consent = consents.get(citizen_of(who), str(consent_id))
    rows = consents.receipts(citizen_of(who), str(consent_id))
    purpose = _purposes(request).get(consent.purpose)
    return render(request, "portal/receipts.html", consent=consent, purpose=purpose, rows=rows)


@router.get("/portal/consents/{consent_id}/receipts.json")
def receipts_json(
    consent_id: uuid.UUID, request: Request, who: Principal = page_user("me-consents", "read")
) -> Response:
    """The receipts as ``GET /v1/me/consents/{id}/receipts`` gives them (verify with the JWKS)."""
    rows = request.app.state.vault.consents.receipts(citizen_of(who), str(consent_id))
    return Response(
        json.dumps(rows),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="consent-{consent_id}-receipts.json"'},
    )


@router.get("/portal/consents/{consent_id}/withdraw")
def withdraw_confirm(
    consent_id: uuid.UUID, request: Request, who: Principal = page_user("me-consents", "delete")
) -> Response:
    """Ask for confirmation, saying what withdrawing does."""
    consent = request.app.state.vault.consents.get(citizen_of(who), str(consent_id))
    purpose = _purposes(request).get(consent.purpose)
    return render(request, "portal/withdraw.html", consent=consent, purpose=purpose)


def _withdraw(request: Request, who: Principal, consent_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    with contextlib.suppress(Conflict):  # withdrawn already (a second click): the outcome the citizen asked for
        request.app.state.vault.consents.withdraw(citizen_of(who), str(consent_id), actor=actor(request, who))
    return RedirectResponse("/portal/consents?done=withdrawn", status_code=303)


@router.post("/portal/consents/{consent_id}/withdraw")
async def withdraw(
    consent_id: uuid.UUID, request: Request, who: Principal = page_user("me-consents", "delete")
) -> Response:
    """Withdraw (the same service as ``DELETE /v1/me/consents/{id}``): grants resting on it end at once."""
    form = await read_form(request)
    return await run_in_threadpool(_withdraw, request, who, consent_id, form)


def _requests_page(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    pending = request.app.state.vault.grants.requests_for(citizen_of(who))
    context.setdefault("errors", {})
    context.setdefault("typed", {})
    context.setdefault("approved", False)
    context.setdefault("declined", False)
    return render(request, "portal/requests.html", status, pending=pending, **context)


@router.get("/portal/requests")
def grant_requests(
    request: Request, done: str = "", who: Principal = page_user("me-grant-requests", "read")
) -> Response:
    """Requests waiting for your consent, each with what approving makes of your consent."""
    return _requests_page(request, who, approved=done == "approved", declined=done == "declined")


def _approve(request: Request, who: Principal, grant_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed = {"grant": str(grant_id), "until": form.get(f"until-{grant_id}"), "expires": form.get(f"expires-{grant_id}")}
    error = ""
    expires: datetime | Keep | None = KEEP
    version = int(form.get("purpose_version")) if form.get("purpose_version").isdigit() else None
    if typed["until"] == "none":
        expires = None
    elif typed["until"] == "date":
        try:
            expires = _end_of(typed["expires"])
            if expires is None:
                error = "Enter the date your consent should end"
        except ValueError:
            error = "Enter a date like 2027-06-30"
    if not error:
        try:
            request.app.state.vault.grants.approve(
                actor(request, who), citizen_of(who), str(grant_id), expires, version
            )
            return RedirectResponse("/portal/requests?done=approved", status_code=303)
        except ValidationFailed:
            error = "The end date must be in the future"
        except (Conflict, Refused):
            error = "This request changed or ended since you opened the page: look at it again"
    return _requests_page(request, who, 422, errors={f"expires-{grant_id}": error}, typed=typed, approved=False)


@router.post("/portal/requests/{grant_id}/approve")
async def approve(
    grant_id: uuid.UUID, request: Request, who: Principal = page_user("me-grant-requests", "update")
) -> Response:
    """Approve a request (``POST /v1/me/grant-requests/{id}/approve``'s service), with the expiry chosen."""
    form = await read_form(request)
    return await run_in_threadpool(_approve, request, who, grant_id, form)


def _decline(request: Request, who: Principal, grant_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    request.app.state.vault.grants.decline(actor(request, who), citizen_of(who), str(grant_id))
    return RedirectResponse("/portal/requests?done=declined", status_code=303)


@router.post("/portal/requests/{grant_id}/decline")
async def decline(
    grant_id: uuid.UUID, request: Request, who: Principal = page_user("me-grant-requests", "update")
) -> Response:
    """Decline a request (``POST /v1/me/grant-requests/{id}/decline``'s service): it ends, consent unchanged."""
    form = await read_form(request)
    return await run_in_threadpool(_decline, request, who, grant_id, form)
