"""The compliance console (``/console``, role compliance-officer): docs/web.md.

The access log and exports are in console_log.py, integrity, reports, flags and deferral decisions
in console_review.py. Every page calls the review functions of the API's /v1/audit routes
(api/routes/audit.py), so a page view is the same audit event as the API call, within the same
agency scope (``agency_scope``: an agency's officers see their agency only, the operator's all).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.security.auth import Principal, agency_scope
from api.security.sessions import page_user
from api.web import console_log, console_review, console_rights, console_verify
from api.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/console")
def console_home(request: Request, who: Principal = page_user("audit", "read")) -> Response:
    """The console's start: what an officer can review, and within which agencies."""
    return render(request, "console/home.html", scope=agency_scope(who, None))


router.include_router(console_log.router)
router.include_router(console_review.router)
router.include_router(console_verify.router)
router.include_router(console_rights.router)
