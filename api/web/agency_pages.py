"""What every page of the officers' console shares: its navigation, second permission checks,
refusal pages and field labels."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.security.auth import Guard, Principal
from api.web.agency_refusals import explain
from api.web.render import render
from vault.catalogue import FieldSpec


def links(request: Request, who: Principal) -> list[tuple[str, str]]:
    """The console's pages this person's role and agency may use (the policy decides, as for the API)."""
    allows = request.app.state.guard.policy.allows
    pages = [
        ("/agency/citizens", "Find a citizen", "citizens", "read"),
        ("/agency/grants/new", "Request a grant", "grants", "create"),
        ("/agency/grants", "Your agency's grants", "grants", "read"),
        ("/agency/interactions", "Service requests", "interactions", "list"),
        ("/agency/rights", "Rights requests", "requests", "read"),
        ("/agency/representations/new", "Record a parent or guardian", "representations", "create"),
    ]
    return [(href, text) for href, text, res, act in pages if allows(who.role, who.agency, res, act, who.agency)]


def page(request: Request, who: Principal, template: str, status: int = 200, **context: Any) -> Response:
    """An agency page: ``render`` with the console's navigation for this person."""
    return render(request, template, status, agency_links=links(request, who), **context)


def also(request: Request, who: Principal, resource: str, action: str) -> None:
    """A second permission a page needs (a form page that reads before it writes), checked as the API does."""
    guard: Guard = request.app.state.guard
    guard.authorize(who, resource, action)


def refused(request: Request, who: Principal, reason: str, status: int) -> Response:
    """A page saying, in plain words, why something was refused."""
    return page(request, who, "agency/refused.html", status, reason=reason, sentence=explain(reason))


def label(spec: FieldSpec) -> str:
    """A field's name in plain words (``date_of_birth`` -> "Date of birth")."""
    return spec.name.replace("_", " ").capitalize()
