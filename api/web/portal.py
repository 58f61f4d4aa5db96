"""The citizen portal: my data, who read it, and download everything (consents: portal_consents.py).

Each page calls the service its API route calls, with the same audit (``actor(request, who)``):
a page view of citizen data is the same event as the API read of it.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.routes.consents import citizen_of
from api.security.auth import Principal, actor
from api.security.sessions import page_user
from api.web.render import access_row, render
from vault import citizen_export
from vault.representation import wording

router = APIRouter(include_in_schema=False)
LOG_PAGE = 50


@router.get("/portal")
def portal_home(request: Request, who: Principal = page_user("me", "read")) -> Response:
    """The portal's start: one link per thing a citizen can do."""
    citizen_of(who)
    return render(request, "portal/home.html")


@router.get("/portal/data")
def my_data(request: Request, who: Principal = page_user("me", "read")) -> Response:
    """Every field held on you, where it came from and when it last changed (audited as ``me.read``)."""
    citizen = uuid.UUID(citizen_of(who))
    vault = request.app.state.vault
    profile = vault.profiles.read(citizen, actor=actor(request, who), action="me.read")
    rows = []
    for name, value in profile.values.items():
        source = profile.provenance.get(name)
        detail = f"From {source.source_agency}, {source.updated_at:%d %B %Y}" if source else ""
        rows.append({"key": label(name), "value": value, "detail": detail, "name": name})
    return render(request, "portal/data.html", rows=rows, erased=profile.status == "erased")


def label(name: str) -> str:
    """A field's name in plain words (``date_of_birth`` -> "Date of birth")."""
    return name.replace("_", " ").capitalize()


@router.get("/portal/access-log")
def my_access_log(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    who: Principal = page_user("me", "read"),
) -> Response:
    """Who read your data: time, agency, purpose, basis, fields; a page at a time (``me.access-log``)."""
    vault = request.app.state.vault
    entries, next_after, deferred = citizen_export.access_page(
        vault, citizen_of(who), actor(request, who), after, LOG_PAGE
    )
    words = wording.said(vault.profiles, entries, actor(request, who))
    rows = [access_row(e, words.get(e.seq)) for e in entries]
    return render(request, "portal/access_log.html", rows=rows, next_after=next_after, deferred=deferred, after=after)


@router.get("/portal/export")
def export_page(request: Request, who: Principal = page_user("me", "read")) -> Response:
    """Download everything held on you: the signed JSON bundle or the same content as CSV."""
    citizen_of(who)
    return render(request, "portal/export.html")


@router.get("/portal/export.json")
def export_json(request: Request, who: Principal = page_user("me", "read", acts="export")) -> Response:
    """The signed bundle, as ``GET /v1/me/export`` gives it (audited ``me.export``)."""
    document, jws = citizen_export.bundle(request.app.state.vault, uuid.UUID(citizen_of(who)), actor(request, who))
    return Response(
        json.dumps({"bundle": document, "jws": jws}, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"},
    )


@router.get("/portal/export.csv")
def export_csv(request: Request, who: Principal = page_user("me", "read", acts="export")) -> Response:
    """The same content as CSV (``GET /v1/me/export?format=csv``)."""
    document, _ = citizen_export.bundle(request.app.state.vault, uuid.UUID(citizen_of(who)), actor(request, who))
    return Response(
        citizen_export.as_csv(document),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="my-data.csv"', "Cache-Control": "no-store"},
    )
