"""Who is calling, and may they do this? One dependency used by every protected route.

Order, failing closed at each step: (the source address's rate, api.security.limits.SourceLimit)
-> bearer token present -> token verified (api.security.tokens) -> claims mapped to (subject, role,
agency) -> rate limit of that caller -> the role is still held *now* (database, so a removal takes
effect on the next request in every worker) -> Casbin allows the action. The rate limit comes
before the role check so that requests for a role the caller does not hold are limited too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
from api.security.acting import ACTING_HEADER, act
from api.security.limits import TRACKED_KEYS, Limits, RateLimiter, retry_after
from api.security.policy import NO_OWNER, PolicyEngine
from api.security.tokens import TokenRejected, TokenVerifier
from api.settings import ExternalIssuer
from keys.sqlstore import connects_now
from vault.audit.log import Actor
from vault.registry import OPERATOR_AGENCY, ROLES, Registry

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/token or a trusted identity provider.")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    subject: str
    role: str
    agency: str
    issuer: str
    # Set when the request acts for another citizen (api/security/acting.py): whom, the audit actor
    # (the representative's subject, role "representative", "<kind>:<relation id>"), and the kind.
    acting_for: str | None = None
    audit_as: Actor | None = None
    relation_kind: str | None = None

    @property
    def limit_key(self) -> str:
        """Whose rate limit this caller's requests count against."""
        return f"{self.issuer}|{self.subject}"


def unauthorized(reason: str) -> ApiProblem:
    """401 with an audit-ready reason code."""
    return ApiProblem(
        401,
        "unauthorized",
        "Authentication failed",
        f"token refused: {reason}",
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
        reason=reason,
    )


def forbidden(reason: str, detail: str) -> ApiProblem:
    """403 with a short reason code the caller can act on (also the audit event's reason) and a
    sentence saying it in words."""
    return ApiProblem(403, "forbidden", "Not allowed", f"{reason}: {detail}", reason=reason)


# Set in the request's scope["state"] by api/express.py: (token, refusal) for a token it saw refused
# moments before handing the request to the route, which raises the same refusal without verifying
# the token a second time (a spray of bad tokens costs one verification each, as without the lane).
REFUSED_TOKEN = "refused_token"  # noqa: S105 - the name of a scope key, not a secret
# Set in scope["state"] by api/bodies.py: (dependency, principal) for a request it authorised
# before reading its body; the route's own run of that dependency returns the same principal.
AUTHORISED = "authorised"

__all__ = ["TRACKED_KEYS", "Guard", "Principal", "RateLimiter"]  # the limiters moved to api.security.limits


class Guard:
    """Authentication, rate limit, live role check and policy, in that order."""

    def __init__(
        self,
        verifier: TokenVerifier,
        registry: Registry,
        policy: PolicyEngine,
        limits: Limits,
        vault_issuer: str,
        external: list[ExternalIssuer],
        inline_checks: bool = False,
    ) -> None:
        # True when the live role check is a local index look-up (embedded SQLite): the check then
        # runs on the event loop instead of costing each request a second trip to the threadpool.
        self.inline_checks = inline_checks
        self.verifier = verifier
        self.registry = registry
        self.policy = policy
        self.limits = limits
        self.vault_issuer = vault_issuer
        self.external = {e.issuer: e for e in external}

    @property
    def limiter(self) -> RateLimiter:
        """The per-caller rate limiter (api/express.py takes and gives back its tokens)."""
        return self.limits.requests

    def authenticate(self, token: str) -> Principal:
        """A principal for a verified token whose role is still held; raises ApiProblem otherwise."""
        return self.check_role(self.identify(token))

    def identify(self, token: str) -> Principal:
        """The caller a verified token names (no database look-up); raises ApiProblem otherwise."""
        try:
            verified = self.verifier.verify(token)
        except TokenRejected as exc:
            raise unauthorized(exc.reason) from None
        claims = verified.claims
        if verified.issuer == self.vault_issuer:
            role, agency, subject = claims.get("role"), claims.get("agency", NO_OWNER), verified.subject
        else:
            ext = self.external[verified.issuer]
            role, agency = claims.get(ext.role_claim), claims.get(ext.agency_claim, NO_OWNER)
            subject = ext.subject_prefix + verified.subject
        if not isinstance(role, str) or role not in ROLES:
            raise unauthorized("unknown-role")
        if not isinstance(agency, str) or not agency or len(agency) > 64:
            raise unauthorized("bad-agency")
        if role == "agency-app" and verified.issuer != self.vault_issuer:  # clients get tokens from the vault only
            raise unauthorized("role-not-from-issuer")
        return Principal(subject, role, NO_OWNER if role == "citizen" else agency, verified.issuer)

    def check_role(self, principal: Principal) -> Principal:
        """``principal`` if its client is active or its role still held (database); raises ApiProblem otherwise."""
        if principal.role == "agency-app":
            why = self.registry.client_refusal(principal.subject)  # revoked, waiting for approval, or secret expired
            if why is not None:
                refusal = unauthorized(why)
                # Known caller: the route and api/express.py (which hands this refusal to the route)
                # both charge it to the client's rate and audit it under the client.
                refusal.principal = principal
                raise refusal
        elif principal.role != "citizen" and not self.registry.holds(
            principal.subject, principal.agency, principal.role
        ):
            refusal = forbidden("role-not-held", "this role is not (or no longer) assigned to you in this agency")
            refusal.principal = principal
            raise refusal
        return principal

    def authorize(self, principal: Principal, resource: str, action: str, owner: str | None = None) -> None:
        """Casbin decision; ``owner`` is the agency owning the target (own-agency rules)."""
        if not self.policy.allows(principal.role, principal.agency, resource, action, owner or principal.agency):
            raise forbidden("policy", f"role {principal.role} may not {action} {resource} here")

    def limit(self, key: str) -> None:
        """429 with Retry-After when ``key`` is over its rate."""
        wait = self.limits.requests.take(key)
        if wait > 0:
            raise rate_limited(wait)


def rate_limited(wait: float, reason: str = "rate-limited") -> ApiProblem:
    """429 with Retry-After (and a reason, so that the refusal is audited under it)."""
    retry = retry_after(wait)
    return ApiProblem(
        429, "rate-limited", "Too many requests", f"retry after {retry} s", {"Retry-After": retry}, reason=reason
    )


def agency_scope(who: Principal, agency: str | None) -> str | None:
    """The agency a review concerns: the operator's officers see every agency (None = all), an
    agency's officers only their own (asking for another is 403)."""
    if who.agency == OPERATOR_AGENCY:
        return agency
    if agency is not None and agency != who.agency:
        raise forbidden("own-agency-only", "an agency's officers review that agency's records only")
    return who.agency


def actor(request: Request, principal: Principal) -> Actor:
    """The audit log's view of the caller of this request (acting for someone: as their representative)."""
    if principal.audit_as is not None:
        return principal.audit_as
    return Actor(principal.subject, principal.role, principal.agency, getattr(request.state, "request_id", None))


def require(resource: str, action: str, acts: str | None = None) -> Any:
    """Dependency: an authenticated principal allowed to ``action`` on ``resource`` (own agency).

    Routes whose target belongs to another agency call ``guard.authorize`` again with that owner.
    With an ``X-Acting-For`` header, the principal acts for that citizen if a representation
    allows the scope ``acts`` (default: the resource's, api/security/acting.py) now.
    """

    def check(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        request.state.audit_action = f"{resource}.{action}"  # a refusal below is audited under this name
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("missing-token")
        guard: Guard = request.app.state.guard
        earlier = request.scope.get("state", {}).get(REFUSED_TOKEN)
        if earlier is not None and earlier[0] == credentials.credentials:
            refused: ApiProblem = earlier[1]
            if isinstance(refused.principal, Principal):  # identified, then refused: charged like any request
                request.state.principal = refused.principal
                guard.limit(refused.principal.limit_key)
            raise refused
        principal = guard.identify(credentials.credentials)
        request.state.principal = principal
        guard.limit(principal.limit_key)
        guard.check_role(principal)
        guard.authorize(principal, resource, action)
        target = request.headers.get(ACTING_HEADER)
        return act(request, principal, resource, acts, target[:64] if target is not None else None)

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        done = request.scope.get("state", {}).get(AUTHORISED)
        if done is not None and done[0] is dependency:  # checked already, before the body was read
            principal: Principal = done[1]
            return principal
        guard: Guard = request.app.state.guard
        acting = ACTING_HEADER in request.headers  # the relation check reads (and may audit): never on the loop
        if (
            guard.inline_checks and not acting and connects_now(guard.registry.engine)
        ):  # never wait for a connection on the loop
            return check(request, credentials)
        return await run_in_threadpool(check, request, credentials)  # the role check crosses a network

    dependency.authz = (resource, action)  # type: ignore[attr-defined]  # read by the route-coverage test
    return Depends(dependency)
