"""The app lists its routers hottest first (grant reads, then /v1/me): route matching is a linear scan,
and the old order matched some 40 routes before a grant read. That is only safe while no request
can match two routes; this test pins it."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.routing import Match

from api.routes import audit, citizens, consents, grants, interactions, ops, pii, purposes, registry, token

ROUTERS = (grants, citizens, interactions, consents, audit, token, purposes, registry, pii, ops)


def _routes() -> list[APIRoute]:
    return [r for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)


def test_every_request_matches_exactly_one_route() -> None:
    routes = _routes()
    assert len(routes) > 40
    for route in routes:
        for method in route.methods or ():
            scope = {"type": "http", "path": _concrete(route.path), "method": method, "root_path": ""}
            full = [r for r in routes if r.matches(scope)[0] is Match.FULL]
            assert full == [route], f"{method} {route.path} also matches {[r.path for r in full if r is not route]}"


def test_a_literal_segment_is_not_taken_for_a_parameter() -> None:
    # e.g. GET /v1/citizens/{citizen_id} must not be the route of another router's literal path
    routes = _routes()
    literal = {r.path for r in routes if "{" not in r.path}
    for route in routes:
        if "{" not in route.path:
            continue
        for path in literal:
            for method in route.methods or ():
                scope = {"type": "http", "path": path, "method": method, "root_path": ""}
                assert route.matches(scope)[0] is not Match.FULL, f"{path} would be routed to {route.path}"
