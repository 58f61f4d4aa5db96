"""Introspection of the app's routes for the coverage tests (API and pages): which routes exist and
which policy checks (``require`` / ``page_user`` markers) guard each."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute


def authz(dependant: Any) -> set[tuple[str, str]]:
    """Every (resource, action) a route's dependencies check, however deep."""
    found: set[tuple[str, str]] = set()
    for dep in dependant.dependencies:
        marker = getattr(dep.call, "authz", None)
        if marker is not None:
            found.add(marker)
        found |= authz(dep)
    return found


def flatten(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes; FastAPI keeps included routers as wrappers (included without prefixes here)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out += flatten(route.original_router.routes)
    return out
