"""The caseworker's pages: request a grant, follow its status, read the granted data, revoke it,
and list the agency's grants.

Each page calls the service of the matching API route (``POST /v1/grants``, ``GET /v1/grants/{id}``,
``GET /v1/grants/{id}/data``, ``POST /v1/grants/{id}/revoke``) after the same policy check. Reading
spends one of the grant's uses, so it is a form (POST, CSRF-checked) and never a link a browser
might prefetch; its answer is the page of data itself. Citizens are named by national id (looked
up through the blind index, as ``GET /v1/citizens?national_id=``) or by vault id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.agency_pages import also, label, page, refused
from api.web.agency_refusals import explain, grant_status
from api.web.render import Form, read_form
from vault.errors import NotFound, Refused, ValidationFailed
from vault.grants.model import Grant
from vault.grants.service import GrantRequest
from vault.purposes.service import Purpose

router = APIRouter(include_in_schema=False)
LIST_PAGE = 50
DATA_PAGE = 50
MAX_LINES = 200
BASIS_WORDS = {
    "consent": "the citizen's consent",
    "legal-obligation": "a legal obligation",
    "vital-interest": "vital interest",
    "public-task": "a public task",
    "contract": "a contract",
    "legitimate-interest": "legitimate interest",
}
NOTICES = {"requested": "The grant was requested.", "revoked": "The grant was revoked."}


def _purposes(request: Request, who: Principal) -> dict[str, Purpose]:
    """The purposes this agency may use now."""
    return {
        p.code: p for p in request.app.state.vault.purposes.all() if p.status == "active" and who.agency in p.agencies
    }


def _purpose_option(p: Purpose) -> tuple[str, str, str]:
    basis = BASIS_WORDS.get(p.lawful_basis, p.lawful_basis)
    hint = f"Rests on {basis}{': ' + p.statute if p.statute else ''}. Data it covers: {', '.join(p.categories)}."
    return p.code, p.description, hint


def _field_options(request: Request, purpose: Purpose) -> list[tuple[str, str, str]]:
    fields = request.app.state.vault.profiles.catalogue.fields.values()
    return [(s.name, label(s), f"Category: {s.category}") for s in fields if s.category in purpose.categories]


def _form_page(request: Request, who: Principal, status: int = 200, **context: Any) -> Response:
    purposes = _purposes(request, who)
    typed: dict[str, Any] = context.setdefault("typed", {})
    context.setdefault("errors", {})
    chosen = purposes.get(typed.get("purpose", ""))
    return page(
        request,
        who,
        "agency/grant_new.html",
        status,
        purposes=[_purpose_option(p) for p in purposes.values()],
        chosen=chosen,
        field_options=_field_options(request, chosen) if chosen else [],
        **context,
    )


@router.get("/agency/grants/new")
def grant_form(
    request: Request,
    purpose: Annotated[str, Query(max_length=64)] = "",
    who: Principal = page_user("grants", "create"),
) -> Response:
    """Request a grant: first the purpose, then the data, the citizens, how long and how many reads."""
    typed = {"purpose": purpose, "duration_hours": "24", "max_uses": "1"}
    errors = {"purpose": "Choose a purpose"} if purpose and purpose not in _purposes(request, who) else {}
    return _form_page(request, who, 422 if errors else 200, typed=typed, errors=errors)


def _citizens(request: Request, who: Principal, text: str) -> tuple[list[str], str | None]:
    """The vault ids the lines of ``text`` name (a vault id, or a national id looked up), or an error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return [], "Enter at least one citizen"
    if len(lines) > MAX_LINES:
        return [], f"Enter at most {MAX_LINES} citizens here (the API takes more)"
    ids: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            ids.append(str(uuid.UUID(line)))
            continue
        except ValueError:
            pass
        also(request, who, "citizens", "lookup")
        try:
            found = request.app.state.vault.profiles.lookup("national_id", line, actor=actor(request, who))
        except ValidationFailed:
            return [], f"Line {number} is neither a national id nor a vault id"
        if len(found) != 1:
            return [], f"Line {number}: no citizen has this national id"
        ids.append(str(found[0]))
    return ids, None


def _number(text: str, low: int, high: int) -> int | None:
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _request(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    typed: dict[str, Any] = {
        "purpose": form.get("purpose"),
        "fields": form.getlist("fields"),
        "citizens": form.get("citizens"),
        "duration_hours": form.get("duration_hours"),
        "max_uses": form.get("max_uses"),
        "case_ref": form.get("case_ref"),
    }
    errors: dict[str, str] = {}
    purposes = _purposes(request, who)
    if typed["purpose"] not in purposes:
        errors["purpose"] = "Choose a purpose"
    allowed = {f for f, _, _ in _field_options(request, purposes[typed["purpose"]])} if not errors else set()
    if not typed["fields"] or not set(typed["fields"]) <= allowed:
        errors["fields"] = "Choose the data you need, among what the purpose covers"
    hours = _number(typed["duration_hours"], 1, 366 * 24)
    if hours is None:
        errors["duration_hours"] = "Enter a whole number of hours from 1 to 8784 (366 days)"
    uses = _number(typed["max_uses"], 1, 1_000_000)
    if uses is None:
        errors["max_uses"] = "Enter a whole number of reads from 1 to 1000000"
    if len(typed["case_ref"]) > 100:
        errors["case_ref"] = "Enter a case reference of at most 100 characters"
    if errors or hours is None or uses is None:
        return _form_page(request, who, 422, typed=typed, errors=errors)
    ids, problem = _citizens(request, who, typed["citizens"])
    if problem:
        return _form_page(request, who, 422, typed=typed, errors={"citizens": problem})
    req = GrantRequest(ids, typed["purpose"], typed["fields"], hours * 3600, uses, typed["case_ref"] or None)
    try:
        grant = request.app.state.vault.grants.request(actor(request, who), req)
    except Refused as exc:
        if "grant_id" in exc.details:  # kept as a request waiting for the citizen's consent
            return RedirectResponse(f"/agency/grants/{exc.details['grant_id']}?done=requested", status_code=303)
        where = {"fields-outside-purpose": "fields", "consent-required": "citizens"}.get(exc.reason, "purpose")
        errors = {where: explain(exc.reason)}
    except NotFound:
        errors = {"citizens": "A vault id you gave matches no active citizen"}
    except ValidationFailed as exc:
        names = {"citizen_ids": "citizens", "duration_seconds": "duration_hours", "max_uses": "max_uses"}
        errors = {names.get(k, "fields"): f"Not accepted: {why}" for k, why in exc.problems.items()}
    else:
        return RedirectResponse(f"/agency/grants/{grant.id}?done=requested", status_code=303)
    return _form_page(request, who, 422, typed=typed, errors=errors)


@router.post("/agency/grants")
async def request_grant(request: Request, who: Principal = page_user("grants", "create")) -> Response:
    """Record the request (``POST /v1/grants``'s service); a consent purpose's request waits for the citizen."""
    form = await read_form(request)
    return await run_in_threadpool(_request, request, who, form)


def _grant_page(request: Request, who: Principal, grant: Grant, status: int = 200, **context: Any) -> Response:
    purpose = _purposes(request, who).get(grant.purpose)
    context.setdefault("notice", "")
    context.setdefault("refusal", None)
    context.setdefault("records", None)
    return page(
        request,
        who,
        "agency/grant.html",
        status,
        grant=grant,
        purpose=purpose,
        status_words=grant_status(grant),
        basis=BASIS_WORDS.get(grant.lawful_basis, grant.lawful_basis),
        **context,
    )


@router.get("/agency/grants/{grant_id}")
def grant_page(
    grant_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("grants", "read")
) -> Response:
    """One of the agency's grants, with its status as a read now would meet it."""
    try:
        grant = request.app.state.vault.grants.get(who.agency, str(grant_id))
    except NotFound:
        return refused(request, who, "not-found", 404)
    return _grant_page(request, who, grant, notice=NOTICES.get(done, ""))


def _read(request: Request, who: Principal, grant_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    after = form.get("after")
    try:
        after = str(uuid.UUID(after)) if after else ""
    except ValueError:
        after = ""
    grants = request.app.state.vault.grants
    try:
        grant, records, next_after = grants.read(actor(request, who), str(grant_id), after or None, DATA_PAGE)
    except NotFound:
        return refused(request, who, "not-found", 404)
    except Refused as exc:
        grant = grants.get(who.agency, str(grant_id))
        return _grant_page(request, who, grant, 403, refusal={"reason": exc.reason, "sentence": explain(exc.reason)})
    labels = {s.name: label(s) for s in grants.profiles.catalogue.fields.values()}
    rows = [
        [c, *(("" if v is None else v.get(f, "")) for f in grant.fields)] if v is not None else [c, "Cannot be read"]
        for c, v in records
    ]
    return page(
        request,
        who,
        "agency/grant_data.html",
        grant=grant,
        head=["Vault id", *(labels.get(f, f) for f in grant.fields)],
        rows=rows,
        next_after=next_after or "",
        after=after,
    )


@router.post("/agency/grants/{grant_id}/read")
async def read_grant(grant_id: uuid.UUID, request: Request, who: Principal = page_user("grants", "use")) -> Response:
    """A page of the granted data (``GET /v1/grants/{id}/data``'s service: one use spent, each citizen audited)."""
    form = await read_form(request)
    return await run_in_threadpool(_read, request, who, grant_id, form)


def _revoke(request: Request, who: Principal, grant_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    try:
        request.app.state.vault.grants.revoke(actor(request, who), str(grant_id))
    except NotFound:
        return refused(request, who, "not-found", 404)
    return RedirectResponse(f"/agency/grants/{grant_id}?done=revoked", status_code=303)


@router.post("/agency/grants/{grant_id}/revoke")
async def revoke_grant(
    grant_id: uuid.UUID, request: Request, who: Principal = page_user("grants", "update")
) -> Response:
    """Revoke the grant (``POST /v1/grants/{id}/revoke``'s service): no read through it from now on."""
    form = await read_form(request)
    return await run_in_threadpool(_revoke, request, who, grant_id, form)


@router.get("/agency/grants")
def grant_list(
    request: Request,
    before: Annotated[uuid.UUID | None, Query()] = None,
    who: Principal = page_user("grants", "read"),
) -> Response:
    """The agency's grants, newest first, each with its status in words."""
    found, next_before = request.app.state.vault.grants.of_agency(
        who.agency, str(before) if before else None, LIST_PAGE
    )
    rows = [
        [
            {"text": g.created_at[:16].replace("T", " "), "href": f"/agency/grants/{g.id}"},
            g.purpose,
            ", ".join(g.fields),
            str(g.citizens),
            grant_status(g),
        ]
        for g in found
    ]
    return page(request, who, "agency/grants.html", rows=rows, next_before=next_before, before=before)
