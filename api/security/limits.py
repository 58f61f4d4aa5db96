"""Rate limits and the audit budget for refusals, per process (docs/decisions.md: limits are per worker).

* :class:`RateLimiter`: a token bucket per key (callers, sources, token logins).
* :class:`RefusalBudget`: refused requests (401, 403, 429) are audited one by one up to a budget
  per caller a minute; past it, identical refusals are counted, and one aggregate event per
  (caller, refusal) states how many there were and between which times. The log thus still counts
  every refusal, while nobody can make the vault write an event per request they send.
* :class:`TokenLimits`: ``/v1/token``'s failures per (client, source) and per source, its issuing
  rate per client, and the lockout pressure on a client (many failures, whatever their sources).
* :class:`SourceLimit`: every request is charged to its source address before anything else.
* :class:`Summariser`: writes the aggregates that are due, from a background thread, so that one is
  written even when no further request arrives.

What a crash can lose: only counts not yet written, i.e. the refusals past the budget within the
last ``WINDOW_SECONDS`` plus one summariser interval (about 65 s) per (caller, refusal). The
refusals within the budget are written before their answer is sent, and a clean stop writes every
pending aggregate.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from vault.audit.log import Actor, AuditLog, Event, iso
from vault.errors import VaultError

if TYPE_CHECKING:
    from api.settings import AppSettings

log = logging.getLogger(__name__)
Clock = Callable[[], float]
TRACKED_KEYS = 100_000  # keys a limiter remembers; the least recently seen are forgotten first
WINDOW_SECONDS = 60.0  # an aggregate covers at most this long; a quiet minute also ends a pressure spell


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    """``table[key] = value``, keeping ``table`` in order of last use and at most TRACKED_KEYS long:
    the keys forgotten are the ones seen longest ago (a bucket of those has refilled long since,
    so forgetting it changes nothing), never the whole table at once."""
    table.pop(key, None)
    table[key] = value
    while len(table) > TRACKED_KEYS:
        del table[next(iter(table))]


def retry_after(wait: float) -> str:
    """The Retry-After value for a wait in seconds (whole seconds, at least 1)."""
    return str(max(1, int(wait + 0.999)))


class RateLimiter:
    """Token bucket per key, per process (see docs/decisions.md: limits are per worker)."""

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
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


@dataclass(frozen=True)
class Refusal:
    """What makes two refusals identical: the same status, action and reason, to the same actor."""

    status: int
    action: str
    reason: str
    subject: str
    role: str
    agency: str


@dataclass(frozen=True)
class Aggregate:
    """``count`` identical refusals, not audited one by one, between ``first`` and ``last`` (epoch seconds)."""

    refusal: Refusal
    count: int
    first: float
    last: float

    def event(self) -> tuple[Actor, Event]:
        """The audit event that stands for them (reason begins with the count, for reviews)."""
        r = self.refusal
        when = f"{_iso(self.first)}..{_iso(self.last)}"
        reason = f"{self.count} more identical refusals {when}, not audited one by one (HTTP {r.status}): {r.reason}"
        return Actor(r.subject, r.role, r.agency), Event(r.action, outcome="denied", reason=reason)


def _iso(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC))


class RefusalBudget:
    """Audited refusals per caller (a source address before authentication, a subject after).

    :meth:`admit` says whether one more refusal by ``who`` is audited on its own (within
    ``per_minute``) or counted into the aggregate of identical ones; :meth:`due` hands over the
    aggregates to write: those whose first refusal is ``WINDOW_SECONDS`` old (a spell that goes on
    is summarised once a window), and, with ``force``, all of them.
    """

    def __init__(self, per_minute: int, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self.per_minute = per_minute
        self._limiter = RateLimiter(per_minute, clock)
        self._clock, self._wall = clock, wall
        # (who, refusal) -> [count, first wall time, last wall time, first clock time]
        self._pending: dict[tuple[str, Refusal], list[float]] = {}
        self._evicted: list[Aggregate] = []
        self._looked = float("-inf")
        self._lock = threading.Lock()

    def admit(self, who: str, refusal: Refusal) -> bool:
        """True: audit this refusal on its own; False: it was counted into an aggregate."""
        if self._limiter.take(who) <= 0:
            return True
        wall, now = self._wall(), self._clock()
        with self._lock:
            entry = self._pending.pop((who, refusal), None) or [0, wall, wall, now]
            entry[0] += 1
            entry[2] = wall
            self._pending[(who, refusal)] = entry
            if len(self._pending) > TRACKED_KEYS:  # written early rather than forgotten
                key = next(iter(self._pending))
                old = self._pending.pop(key)
                self._evicted.append(Aggregate(key[1], int(old[0]), old[1], old[2]))
        return False

    def due(self, force: bool = False, every: float = 0.0) -> list[Aggregate]:
        """The aggregates to write now, removed from the budget (the caller writes them); with
        ``every``, nothing unless that many seconds passed since the last look (a request's look
        must stay cheap: this walks every pending aggregate)."""
        now = self._clock()
        with self._lock:
            if not force and now - self._looked < every:
                return []
            self._looked = now
            ready = [k for k, v in self._pending.items() if force or now - v[3] >= WINDOW_SECONDS]
            out, self._evicted = self._evicted, []
            for key in ready:
                count, first, last, _ = self._pending.pop(key)
                out.append(Aggregate(key[1], int(count), first, last))
        return out


@dataclass(frozen=True)
class Pressure:
    """Many failed logins for one client within a minute, from ``sources`` distinct sources."""

    client_id: str
    failures: int
    sources: int


class TokenLimits:
    """``/v1/token``: a correct secret is never refused for someone else's failures.

    The route verifies the secret first. A failure is charged to (client, source) and to the
    source, and refused with 429 past either; a success is charged only to a generous issuing rate
    per client. Failures for one client past ``pressure_per_minute``, from whatever sources, start
    a pressure spell (ended by a quiet minute), reported once so the compliance flags show it.
    """

    def __init__(
        self,
        failures_per_minute: int,
        source_failures_per_minute: int,
        issues_per_minute: int,
        pressure_per_minute: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self._pair = RateLimiter(failures_per_minute, clock)
        self._source = RateLimiter(source_failures_per_minute, clock)
        self._issues = RateLimiter(issues_per_minute, clock)
        self._pressure = RateLimiter(pressure_per_minute, clock)
        self._clock = clock
        self._recent: dict[str, deque[str]] = {}  # client -> sources of its latest failures
        self._spell: dict[str, float] = {}  # client -> last time its failures were over the pressure rate
        self._window = pressure_per_minute + 1
        self._lock = threading.Lock()

    def issued(self, client_id: str) -> float:
        """Charge one token issued to ``client_id``: 0, or seconds to wait."""
        return self._issues.take(client_id)

    def failed(self, client_id: str, source: str) -> tuple[float, Pressure | None]:
        """Charge one failed login: (seconds the source must wait, 0 if none; a pressure spell it starts)."""
        wait = max(self._pair.take(f"{client_id}|{source}"), self._source.take(source))
        with self._lock:
            recent = self._recent.pop(client_id, None) or deque(maxlen=self._window)
            recent.append(source)
            _remember(self._recent, client_id, recent)
        if self._pressure.take(client_id) <= 0:
            return wait, None
        now = self._clock()
        with self._lock:
            last = self._spell.get(client_id)
            _remember(self._spell, client_id, now)
            sources = len(set(recent))
        starts = last is None or now - last >= WINDOW_SECONDS
        return wait, Pressure(client_id, self._pressure.per_minute + 1, sources) if starts else None


@dataclass
class Limits:
    """Every limiter of one process (swapped whole by tests that move the clock)."""

    requests: RateLimiter  # per caller (issuer and subject), after the token is verified
    sources: RateLimiter  # per source address, before anything else
    refusals: RefusalBudget
    tokens: TokenLimits

    @classmethod
    def from_settings(cls, s: AppSettings, clock: Clock = time.monotonic, wall: Clock = time.time) -> Limits:
        """The limiters the settings describe."""
        return cls(
            RateLimiter(s.rate_limit_per_minute, clock),
            RateLimiter(s.source_requests_per_minute or max(6000, 10 * s.rate_limit_per_minute), clock),
            RefusalBudget(s.auth_failures_per_minute, clock, wall),
            TokenLimits(
                s.token_failures_per_minute,
                s.token_source_failures_per_minute,
                s.token_issues_per_minute,
                s.token_pressure_per_minute,
                clock,
            ),
        )


def write_aggregates(audit: AuditLog, aggregates: list[Aggregate]) -> None:
    """Append one event per aggregate (a failure is logged; the counts are then lost, as on a crash)."""
    for aggregate in aggregates:
        who, event = aggregate.event()
        try:
            audit.record(who, event)
        except VaultError:
            log.error("could not audit aggregated refusals", extra={"action": event.action, "count": aggregate.count})


class Summariser:
    """Writes due aggregates every ``interval`` seconds from a thread; :meth:`stop` writes the rest."""

    def __init__(self, limits: Callable[[], Limits], audit: AuditLog, interval: float = 5.0) -> None:
        self._limits = limits  # read at each pass: tests swap the guard's limits
        self._audit = audit
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self, force: bool = False) -> None:
        """Write the aggregates that are due (all of them with ``force``)."""
        due = self._limits().refusals.due(force)
        if due:
            write_aggregates(self._audit, due)

    def start(self) -> None:
        """Start the thread (no-op when running)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="refusal-summariser", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then write every pending aggregate."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush(force=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # a failed pass is retried at the next one
                log.warning("writing aggregated refusals failed", exc_info=True)


def source_of(host: str | None) -> str:
    """Whose requests these are before authentication: the client address (the forwarded one from
    trusted proxies only, set by uvicorn's proxy handling), an IPv6 address by its /64, which one
    party usually holds whole."""
    host = host or "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


SOURCE_LIMITED = Refusal(429, "requests.source-limited", "source-rate", "anonymous", "-", "-")


class SourceLimit:
    """ASGI middleware (inside Hygiene, outside everything else): every request is charged to its
    source address before its token is looked at, so unauthenticated floods are limited too.

    Refusals are problem documents with Retry-After, audited within the source's refusal budget
    and counted into aggregates past it, like every other refusal (``RefusalBudget``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope["app"].state
            limits: Limits = state.guard.limits
            source = source_of(scope["client"][0] if scope.get("client") else None)
            wait = limits.sources.take(source)
            if wait > 0:
                request_id = scope.get("state", {}).get("request_id")
                if limits.refusals.admit(source, SOURCE_LIMITED):
                    who = Actor("anonymous", "-", "-", request_id)
                    event = Event(SOURCE_LIMITED.action, outcome="denied", reason=SOURCE_LIMITED.reason)
                    try:
                        await run_in_threadpool(state.vault.audit.record, who, event)
                    except VaultError:
                        log.error("could not audit a refused request", extra={"action": SOURCE_LIMITED.action})
                await _too_many(send, scope["path"], request_id, wait)
                return
        await self.app(scope, receive, send)


async def _too_many(send: Send, path: str, request_id: str | None, wait: float) -> None:
    """The 429 problem document the app's handler would send for a rate limit."""
    body = json.dumps(
        {
            "type": "https://citizen-vault.example/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": f"too many requests from this address; retry after {retry_after(wait)} s",
            "instance": path[:200],
            "request_id": request_id,
            "reason": SOURCE_LIMITED.reason,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", retry_after(wait).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
