"""The compliance console's rights requests (``/console/requests``): how many open requests are
past their legal due date, and which (the service of ``GET /v1/requests/overdue``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.security.auth import Principal, actor
from api.security.sessions import page_user
from api.web.render import render
from api.web.rights_words import KINDS
from vault.requests.handling import RequestDesk

router = APIRouter(include_in_schema=False)


@router.get("/console/requests")
def overdue(request: Request, who: Principal = page_user("requests", "read")) -> Response:
    """Overdue rights requests: the count, and the most overdue first, with the agency handling each."""
    desk: RequestDesk = request.app.state.vault.requests
    count, found = desk.overdue(actor(request, who), limit=200)
    rows = [[KINDS.get(r.kind, r.kind), r.agency, r.status, r.submitted_at[:10], r.due_at[:10], r.id] for r in found]
    return render(request, "console/requests.html", count=count, rows=rows)
