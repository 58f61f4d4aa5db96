"""Acting for someone else: the one place a request becomes a request *for* another citizen.

Both the API's dependency (``auth.require``, header ``X-Acting-For: <citizen id>``) and the pages'
(``sessions.page_user``, the session's stored choice) call :func:`act` after the caller is
authenticated and Casbin allowed the route. Each route declares which representation scope it
needs (``acts=``); without a declaration the resource's default below applies, and a route with
neither cannot be used for someone else (``not-delegable``, fail closed). The relation itself is
checked by the vault (scope, dates, a child's age) on every request: nothing is trusted as stored.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from fastapi import Request

from api.errors import ApiProblem

if TYPE_CHECKING:
    from api.security.auth import Principal

ACTING_HEADER = "X-Acting-For"
SELF = "self"  # pages about the signed-in person themselves (whom they act for, who acts for them)
# The representation scope each citizen resource needs by default (routes may name another: export).
DEFAULT_SCOPES = {
    "me": "view",
    "me-consents": "consents",
    "me-grant-requests": "consents",
    "me-requests": "requests",
}


def act(request: Request, principal: Principal, resource: str, acts: str | None, target: str | None) -> Principal:
    """``principal`` acting for ``target`` when a relation allows ``acts`` (or the resource's
    default scope) now; ``principal`` itself when there is no target. Refusals are audited."""
    if target is None:
        return principal
    scope = acts or DEFAULT_SCOPES.get(resource)
    if scope == SELF:
        return principal
    if principal.role != "citizen" or scope is None:
        raise ApiProblem(
            403,
            "forbidden",
            "Not allowed",
            "not-delegable: this cannot be done for someone else",
            reason="not-delegable",
        )
    if target == principal.subject:
        return principal
    request_id = getattr(request.state, "request_id", None)
    acting = request.app.state.vault.representation.authorise(principal.subject, target, scope, request_id)
    relation = acting.relation
    chosen = dataclasses.replace(
        principal, acting_for=relation.represented_id, audit_as=acting.actor, relation_kind=relation.kind
    )
    request.state.principal = chosen
    return chosen


ACTING_PARAMETER: dict[str, Any] = {
    "name": ACTING_HEADER,
    "in": "header",
    "required": False,
    "description": "Act for this citizen (their vault id) under a parent, guardian or mandate relation that "
    "covers this action now (docs/representation.md); refused with 403 and a reason otherwise.",
    "schema": {"type": "string", "maxLength": 64},
}


def document_acting(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the ``X-Acting-For`` header on the citizen's own operations (``/v1/me`` ...)."""
    for path, operations in document.get("paths", {}).items():
        if path == "/v1/me" or path.startswith("/v1/me/"):
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation.setdefault("parameters", []).append(dict(ACTING_PARAMETER))
    return document
