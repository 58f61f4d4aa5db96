"""Who is calling, and may they do this? One dependency used by every protected route.

Order, failing closed at each step: bearer token present -> token verified (api.security.tokens)
-> claims mapped to (subject, role, agency) -> the role is still held *now* (database, so a removal
takes effect on the next request in every worker) -> rate limit -> Casbin allows the action.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
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


def forbidden(reason: str) -> ApiProblem:
    """403 with a reason the caller can act on."""
    return ApiProblem(403, "forbidden", "Not allowed", reason, reason=reason)


# Set in the request's scope["state"] by api/express.py: (token, refusal) for a token it saw refused
# moments before handing the request to the route, which raises the same refusal without verifying
# the token a second time (a spray of bad tokens costs one verification each, as without the lane).
REFUSED_TOKEN = "refused_token"  # noqa: S105 - the name of a scope key, not a secret
# Set in scope["state"] by api/bodies.py: (dependency, principal) for a request it authorised
# before reading its body; the route's own run of that dependency returns the same principal.
AUTHORISED = "authorised"

TRACKED_KEYS = 100_000  # clients a limiter remembers; the least recently seen are forgotten first


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    """``table[key] = value``, keeping ``table`` in order of last use and at most TRACKED_KEYS long:
    the keys forgotten are the ones seen longest ago (a bucket of those has refilled long since,
    so forgetting it changes nothing), never the whole table at once."""
    table.pop(key, None)
    table[key] = value
    while len(table) > TRACKED_KEYS:
        del table[next(iter(table))]


class RateLimiter:
    """Token bucket per key, per process (see docs/decisions.md: limits are per worker)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else seconds until the next request would be."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                _remember(self._buckets, key, (tokens - 1, now))
                return 0.0
            _remember(self._buckets, key, (tokens, now))
            return (1 - tokens) / self.rate

    def give_back(self, key: str) -> None:
        """Return the token a successful :meth:`take` took, for a request handed on unserved
        (api/express.py), so that it is charged once, where it is served."""
        with self._lock:
            entry = self._buckets.get(key)
            if entry is not None:
                self._buckets[key] = (min(self.burst, entry[0] + 1), entry[1])


class FailureThrottle:
    """Failed authentications per client address (SECURITY.md, "Failed authentications"; docs/decisions.md).

    Every refused request is audited, and an audit event is a write: without a limit, anyone could
    make the vault write as fast as they can send bad tokens. Past ``per_minute`` failures from one
    address, further failures from it get the same 401 but are not audited one by one; one event
    records that the address was throttled, once per spell (a minute without being throttled ends
    one). No response changes, so nobody is held back by this.
    """

    SPELL_SECONDS = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._limiter = RateLimiter(per_minute, clock)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def refuse(self, address: str) -> tuple[bool, bool]:
        """For one more failure from ``address``: (whether it is over the limit, whether this
        failure starts a throttled spell)."""
        if self._limiter.take(address) <= 0:
            return False, False
        now = self._clock()
        with self._lock:
            last = self._last.get(address)
            _remember(self._last, address, now)
        return True, last is None or now - last >= self.SPELL_SECONDS


class Guard:
    """Authentication, live role check, rate limit and policy, in that order."""

    def __init__(
        self,
        verifier: TokenVerifier,
        registry: Registry,
        policy: PolicyEngine,
        limiter: RateLimiter,
        vault_issuer: str,
        external: list[ExternalIssuer],
        failures: FailureThrottle,
        inline_checks: bool = False,
    ) -> None:
        # True when the live role check is a local index look-up (embedded SQLite): the check then
        # runs on the event loop instead of costing each request a second trip to the threadpool.
        self.inline_checks = inline_checks
        self.verifier = verifier
        self.registry = registry
        self.policy = policy
        self.limiter = limiter
        self.failures = failures
        self.vault_issuer = vault_issuer
        self.external = {e.issuer: e for e in external}

    def authenticate(self, token: str) -> Principal:
        """A principal for a verified token whose role is still held; raises ApiProblem otherwise."""
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
        if role == "agency-app":
            if verified.issuer != self.vault_issuer:  # clients get their tokens from the vault, nowhere else
                raise unauthorized("role-not-from-issuer")
            if not self.registry.client_is_active(subject):
                raise unauthorized("client-revoked")
        elif role != "citizen" and not self.registry.holds(subject, agency, role):
            refusal = forbidden("role-not-held: this role is not (or no longer) assigned to you in this agency")
            refusal.principal = Principal(subject, role, agency, verified.issuer)
            raise refusal
        return Principal(subject, role, NO_OWNER if role == "citizen" else agency, verified.issuer)

    def authorize(self, principal: Principal, resource: str, action: str, owner: str | None = None) -> None:
        """Casbin decision; ``owner`` is the agency owning the target (own-agency rules)."""
        if not self.policy.allows(principal.role, principal.agency, resource, action, owner or principal.agency):
            raise forbidden(f"policy: role {principal.role} may not {action} {resource} here")

    def limit(self, key: str) -> None:
        """429 with Retry-After when ``key`` is over its rate."""
        wait = self.limiter.take(key)
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise ApiProblem(
                429, "rate-limited", "Too many requests", f"retry after {retry} s", {"Retry-After": str(retry)}
            )


def agency_scope(who: Principal, agency: str | None) -> str | None:
    """The agency a review concerns: the operator's officers see every agency (None = all), an
    agency's officers only their own (asking for another is 403)."""
    if who.agency == OPERATOR_AGENCY:
        return agency
    if agency is not None and agency != who.agency:
        raise forbidden("own-agency-only: an agency's officers review that agency's records only")
    return who.agency


def actor(request: Request, principal: Principal) -> Actor:
    """The audit log's view of the caller of this request."""
    return Actor(principal.subject, principal.role, principal.agency, getattr(request.state, "request_id", None))


def require(resource: str, action: str) -> Any:
    """Dependency: an authenticated principal allowed to ``action`` on ``resource`` (own agency).

    Routes whose target belongs to another agency call ``guard.authorize`` again with that owner.
    """

    def check(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        request.state.audit_action = f"{resource}.{action}"  # a refusal below is audited under this name
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("missing-token")
        guard: Guard = request.app.state.guard
        earlier = request.scope.get("state", {}).get(REFUSED_TOKEN)
        if earlier is not None and earlier[0] == credentials.credentials:
            raise earlier[1]
        principal = guard.authenticate(credentials.credentials)
        request.state.principal = principal
        guard.limit(principal.limit_key)
        guard.authorize(principal, resource, action)
        return principal

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        done = request.scope.get("state", {}).get(AUTHORISED)
        if done is not None and done[0] is dependency:  # checked already, before the body was read
            principal: Principal = done[1]
            return principal
        guard: Guard = request.app.state.guard
        if guard.inline_checks and connects_now(guard.registry.engine):  # never wait for a connection on the loop
            return check(request, credentials)
        return await run_in_threadpool(check, request, credentials)  # the role check crosses a network

    dependency.authz = (resource, action)  # type: ignore[attr-defined]  # read by the route-coverage test
    return Depends(dependency)
