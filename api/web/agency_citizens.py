"""The registrar's pages: find a citizen, read the profile, correct it.

A registrar finds a citizen through a searchable field's blind index (the service of
``GET /v1/citizens?national_id=``), reads the profile (``GET /v1/citizens/{id}``'s audited read) and
corrects it (``PATCH /v1/citizens/{id}``'s service). Each page passes the same policy check as its
API route (``page_user``), and a refusal is shown in plain words (agency_refusals.py).
Searches are posted, not put in the address: a national id in a URL would reach logs and history.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.agency_pages import also, label, page, refused
from api.web.agency_refusals import explain
from api.web.render import Form, read_form
from vault.catalogue import FieldSpec
from vault.errors import CitizenErased, Conflict, NotFound, ValidationFailed

router = APIRouter(include_in_schema=False)
WAS = "was-"  # prefix of the hidden fields holding the values the correction form was shown with


def _searchable(request: Request) -> list[FieldSpec]:
    searchable: list[FieldSpec] = request.app.state.vault.profiles.catalogue.searchable
    return searchable


def _options(request: Request) -> list[tuple[str, str, None]]:
    return [(s.name, label(s), None) for s in _searchable(request)]


@router.get("/agency/citizens")
def find_form(request: Request, who: Principal = page_user("citizens", "lookup")) -> Response:
    """Find a citizen: choose a searchable field and give the exact value."""
    return page(request, who, "agency/find.html", options=_options(request), errors={}, typed={}, found=None)


def _find(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    fields = {s.name: s for s in _searchable(request)}
    typed = {"field": form.get("field"), "value": form.get("value")}
    errors: dict[str, str] = {}
    if typed["field"] not in fields:
        errors["field"] = "Choose what to search by"
    if not typed["value"]:
        errors["value"] = "Enter the value to look for"
    found: list[list[dict[str, str]]] | None = None
    if not errors:
        try:
            ids = request.app.state.vault.profiles.lookup(typed["field"], typed["value"], actor=actor(request, who))
            found = [[{"text": str(c), "href": f"/agency/citizens/{c}"}] for c in ids]
        except ValidationFailed as exc:
            why = next(iter(exc.problems.values()), "not valid")
            errors["value"] = f"{label(fields[typed['field']])}: {why}"
    status = 422 if errors else 200
    context = {"options": _options(request), "errors": errors, "typed": typed, "found": found}
    return page(request, who, "agency/find.html", status, **context)


@router.post("/agency/citizens")
async def find(request: Request, who: Principal = page_user("citizens", "lookup")) -> Response:
    """The citizens whose field has exactly this value (``citizens.lookup``, audited per citizen found)."""
    form = await read_form(request)
    return await run_in_threadpool(_find, request, who, form)


@router.get("/agency/citizens/{citizen_id}")
def profile_page(
    citizen_id: uuid.UUID, request: Request, done: str = "", who: Principal = page_user("citizens", "read")
) -> Response:
    """A profile with each field's source (audited ``citizens.read``, as the API read)."""
    profiles = request.app.state.vault.profiles
    try:
        profile = profiles.read(citizen_id, actor=actor(request, who))
    except NotFound:
        return refused(request, who, "not-found", 404)
    rows = []
    for name, spec in profiles.catalogue.fields.items():
        if name in profile.values:
            source = profile.provenance.get(name)
            detail = f"From {source.source_agency}, {source.updated_at:%d %B %Y}" if source else ""
            rows.append({"key": label(spec), "value": profile.values[name], "detail": detail})
    can_correct = request.app.state.guard.policy.allows(who.role, who.agency, "citizens", "update", who.agency)
    context = {"citizen": citizen_id, "rows": rows, "erased": profile.status == "erased", "corrected": done == "1"}
    return page(request, who, "agency/profile.html", can_correct=can_correct, **context)


def _correct_page(
    request: Request, who: Principal, citizen_id: uuid.UUID, typed: dict[str, str], was: dict[str, str], **extra: Any
) -> Response:
    fields = list(request.app.state.vault.profiles.catalogue.fields.values())
    errors = extra.pop("errors", {})
    status = 422 if errors else 200
    context = {"citizen": citizen_id, "fields": fields, "typed": typed, "was": was, "errors": errors, **extra}
    return page(request, who, "agency/correct.html", status, label=label, **context)


@router.get("/agency/citizens/{citizen_id}/correct")
def correct_form(citizen_id: uuid.UUID, request: Request, who: Principal = page_user("citizens", "update")) -> Response:
    """Correct a profile: every field, filled with its value (reading it is the audited ``citizens.read``)."""
    also(request, who, "citizens", "read")
    try:
        profile = request.app.state.vault.profiles.read(citizen_id, actor=actor(request, who))
    except NotFound:
        return refused(request, who, "not-found", 404)
    if profile.status == "erased":
        return refused(request, who, "erased", 410)
    values = {name: str(value) for name, value in profile.values.items()}
    return _correct_page(request, who, citizen_id, values, values)


def _correct(request: Request, who: Principal, citizen_id: uuid.UUID, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    catalogue = request.app.state.vault.profiles.catalogue
    # Browsers send line breaks as CRLF: compared and saved as the LF the stored text holds.
    typed = {name: form.get(name).replace("\r\n", "\n") for name in catalogue.fields}
    was = {name: form.get(WAS + name).replace("\r\n", "\n") for name in catalogue.fields}
    # Only what the registrar changed is sent: an untouched field keeps its source and date, and
    # a change someone else saved meanwhile to a field left alone here is not overwritten.
    changes: dict[str, object] = {n: (typed[n] or None) for n in catalogue.fields if typed[n] != was[n]}
    first = next(iter(catalogue.fields))
    if not changes:
        return _correct_page(request, who, citizen_id, typed, was, errors={first: "You did not change anything"})
    try:
        request.app.state.vault.profiles.correct(citizen_id, changes, who.agency, actor=actor(request, who))
    except ValidationFailed as exc:
        errors = {
            (n if n in catalogue.fields else first): (
                f"{label(catalogue.fields[n])}: {why}" if n in catalogue.fields else why
            )
            for n, why in exc.problems.items()
        }
        return _correct_page(request, who, citizen_id, typed, was, errors=errors)
    except Conflict as exc:
        field = exc.field if exc.field in catalogue.fields else first
        return _correct_page(request, who, citizen_id, typed, was, errors={field: explain("conflict")})
    except CitizenErased:
        return refused(request, who, "erased", 410)
    except NotFound:
        return refused(request, who, "not-found", 404)
    return RedirectResponse(f"/agency/citizens/{citizen_id}?done=1", status_code=303)


@router.post("/agency/citizens/{citizen_id}/correct")
async def correct(
    citizen_id: uuid.UUID, request: Request, who: Principal = page_user("citizens", "update")
) -> Response:
    """Save the corrections (``PATCH /v1/citizens/{id}``'s service; an emptied optional field is removed)."""
    form = await read_form(request)
    return await run_in_threadpool(_correct, request, who, citizen_id, form)
