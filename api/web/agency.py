"""The officers' console (``/agency``): its start page, and the routers of its pages.

Registrars find, read and correct profiles (agency_citizens.py); caseworkers request, follow, read
and revoke their agency's grants (agency_grants.py). Every page passes the policy check of the API
route whose service it calls, and every refusal is explained in plain words (agency_refusals.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.security.auth import Principal
from api.security.sessions import page_user
from api.web import agency_citizens, agency_grants, agency_interactions, agency_representation, agency_rights
from api.web.agency_pages import page

router = APIRouter(include_in_schema=False)


@router.get("/agency")
def agency_home(request: Request, who: Principal = page_user("citizens", "lookup")) -> Response:
    """The console's start: one link per thing this officer may do."""
    return page(request, who, "agency/home.html")


router.include_router(agency_citizens.router)
router.include_router(agency_grants.router)
router.include_router(agency_interactions.router)
router.include_router(agency_rights.router)
router.include_router(agency_representation.router)
