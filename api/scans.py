"""A bounded executor for expensive PII scans, apart from the request threadpool (issue 19).

A scan of a long text takes a core for a while. Run in the request threadpool, a flood of them by
one caller held the threads and the GIL that everyone else's requests needed; run on the event
loop, it would stop everything. Here scans get their own few threads, each caller a bound on its
scans queued or running (429 with Retry-After past it), everyone together a bound on the queue.
Per process, like the other limits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """A caller (or everyone) has as many scans in flight as allowed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ScanQueue:
    """Expensive scans run here, on their own few threads, never on the event loop nor in the
    request threadpool (a flood of long scans cannot starve other requests); each caller may have
    ``per_caller`` scans queued or running, everyone together ``total``."""

    def __init__(self, workers: int, per_caller: int, total: int) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None  # started by start(), with the app
        self._per_caller, self._total = per_caller, total
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    async def run(self, caller: str, call: Callable[[], T]) -> T:
        """``call()`` on the scan threads; raises :class:`Busy` at once when over a bound."""
        with self._lock:
            if self._in_flight.get(caller, 0) >= self._per_caller:
                raise Busy("scans-in-flight")
            if sum(self._in_flight.values()) >= self._total:
                raise Busy("scan-queue-full")
            self._in_flight[caller] = self._in_flight.get(caller, 0) + 1
        try:
            # start(): an app used without its lifespan, or between two runs of it (tests)
            future = (self._pool or self.start()).submit(call)
        except RuntimeError:  # shut down meanwhile
            self._done(caller)
            raise Busy("scan-queue-full") from None
        # Released when the scan ends, not when the request does: a caller who hangs up does not
        # get a free slot while its scan still runs.
        future.add_done_callback(lambda _: self._done(caller))
        return await asyncio.wrap_future(future)

    def _done(self, caller: str) -> None:
        with self._lock:
            left = self._in_flight.pop(caller, 1) - 1
            if left > 0:
                self._in_flight[caller] = left

    def start(self) -> ThreadPoolExecutor:
        """Start the scan threads, if not running (the app's lifespan does; it may run more than once)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="pii-scan")
            return self._pool

    def close(self) -> None:
        """Stop taking scans; queued ones are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
