"""The compliance console's access log: filters, paging and order, one event, and exports.

Every page calls the review functions the API's /v1/audit routes call (api/routes/audit.py), so a
page view is the same ``audit.read`` or ``audit.export`` event, within the same agency scope.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.errors import ApiProblem
from api.routes.audit import export_download, review_events
from api.security.auth import Principal, agency_scope
from api.security.sessions import page_user
from api.web.render import render
from vault.audit import review
from vault.audit.review import StoredEvent

router = APIRouter(include_in_schema=False)
LOG_PAGE = 50
FILTERS = ("since", "until", "agency", "purpose", "citizen", "actor", "action", "outcome")
OUTCOMES = ("allowed", "denied", "failed")
_LINE = re.compile(r"[^\x00-\x1f\x7f-\x9f]*")
_LENGTHS = {"agency": 64, "purpose": 64, "action": 64, "actor": 256}
Cursor = Annotated[int, Query(ge=0, le=2**62)]


@dataclass
class LogQuery:
    """The log's filters as typed (shown again in the form) and as a review filter, with any errors."""

    values: dict[str, str]
    newest_first: bool
    errors: dict[str, str] = field(default_factory=dict)
    filters: review.EventFilter = field(default_factory=review.EventFilter)

    def link(self, path: str, **extra: str | int) -> str:
        """``path`` with these filters (and ``extra``) as its query."""
        given = {k: v for k, v in self.values.items() if v}
        return path + "?" + urlencode({**given, "order": "newest" if self.newest_first else "oldest", **extra})

    def described(self) -> str:
        """The filters in words, for a table's caption."""
        given = [f"{name} {value}" for name, value in self.values.items() if value]
        return ", ".join(given) if given else "no filter"


def _when(text: str, end: bool) -> datetime:
    """A date (whole day; as an end: inclusive) or a date and time; UTC unless a zone is given."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(text) == 10:  # an end date includes that whole day
        moment += timedelta(days=1)
    return moment


def read_filters(request: Request) -> LogQuery:
    """The filters of a console page's query string; blank fields are no filter."""
    params = request.query_params
    values = {name: params.get(name, "").strip()[:300] for name in FILTERS}
    query = LogQuery(values, params.get("order", "newest") != "oldest")
    errors = query.errors
    for name, limit in _LENGTHS.items():
        if len(values[name]) > limit or not _LINE.fullmatch(values[name]):
            errors[name] = f"Enter at most {limit} characters, without control characters"
    if values["outcome"] and values["outcome"] not in OUTCOMES:
        errors["outcome"] = "Choose allowed, denied or failed"
    citizen = None
    if values["citizen"]:
        try:
            citizen = str(uuid.UUID(values["citizen"]))
        except ValueError:
            errors["citizen"] = "Enter a citizen's vault id, like 0a1b2c3d-…"
    bounds: dict[str, datetime | None] = {"since": None, "until": None}
    for name in bounds:
        if values[name]:
            try:
                bounds[name] = _when(values[name], end=name == "until")
            except ValueError:
                errors[name] = "Enter a date like 2026-05-31, or a date and time like 2026-05-31T14:30"
    since, until = bounds["since"], bounds["until"]
    if since and until and since >= until:
        errors["until"] = "The end must be after the start"
    if not errors:
        query.filters = review.EventFilter(
            citizen,
            values["agency"] or None,
            values["actor"] or None,
            values["action"] or None,
            values["outcome"] or None,
            values["purpose"] or None,
            since,
            until,
        )
    return query


def event_row(event: StoredEvent) -> list[object]:
    """One event as table cells; the first links to its detail."""
    return [
        {"text": str(event.seq), "href": f"/console/events/{event.seq}"},
        event.ts[:19].replace("T", " "),
        event.actor,
        event.agency,
        event.action,
        event.citizen_id or "-",
        event.purpose or "-",
        event.outcome,
        event.reason or "",
    ]


@router.get("/console/events")
def access_log(request: Request, after: Cursor = 0, who: Principal = page_user("audit", "read")) -> Response:
    """The access log: filtered, newest or oldest first, a page at a time (``audit.read`` as the API)."""
    query = read_filters(request)
    scope = agency_scope(who, query.values["agency"] or None)  # another agency's: 403, as the API
    if query.errors:
        return render(request, "console/events.html", status=422, query=query, scope=scope, rows=[], links={})
    page, next_after = review_events(request, who, query.filters, after, LOG_PAGE, query.newest_first)
    links = {
        "first": query.link("/console/events") if after else None,
        "next": query.link("/console/events", after=next_after) if next_after else None,
        "csv": query.link("/console/export/download", format="csv"),
        "jsonl": query.link("/console/export/download", format="jsonl"),
    }
    rows = [event_row(e) for e in page]
    return render(request, "console/events.html", query=query, scope=scope, rows=rows, links=links)


@router.get("/console/events/{seq}")
def event_detail(
    request: Request,
    seq: Annotated[int, Path(ge=1, le=2**62)],
    who: Principal = page_user("audit", "read"),
) -> Response:
    """One event, every column (another agency's looks absent to an agency's officer)."""
    page, _ = review_events(request, who, review.EventFilter(), seq - 1, 1, what=f"event {seq}")
    if not page or page[0].seq != seq:
        raise ApiProblem(404, "not-found", "Not found", "no such event in the agencies you review")
    return render(request, "console/event.html", event=page[0])


@router.get("/console/export")
def export_page(request: Request, who: Principal = page_user("audit", "export")) -> Response:
    """Choose the events to export and the format."""
    query = read_filters(request)
    scope = agency_scope(who, query.values["agency"] or None)
    return render(request, "console/export.html", query=query, scope=scope)


@router.get("/console/export/download")
def export_file(
    request: Request,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format")] = "csv",
    who: Principal = page_user("audit", "export"),
) -> Response:
    """The filtered log as CSV or signed JSON Lines: the API's export, audited ``audit.export``."""
    query = read_filters(request)
    scope = agency_scope(who, query.values["agency"] or None)
    if query.errors:
        return render(request, "console/export.html", status=422, query=query, scope=scope)
    return export_download(request, who, query.filters, fmt)
