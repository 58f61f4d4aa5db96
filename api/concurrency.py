"""Where a request's work runs: the event loop or the threadpool.

With the embedded SQLite every audited access is a write transaction, and SQLite runs one writer
at a time. Short ones (a profile read, a small grant page) ran in the threadpool and spent more
time handing off between threads and contending for the GIL than reading (measured: /v1/me at 0.50
of the bare endpoint's throughput in the threadpool, 0.88 on the loop). So on SQLite they run on
the event loop, but only when they need not wait: the service is called with ``wait=False`` and
raises ``WouldWait`` (having done nothing) when another writer holds the lock, another process
included, or the work would be long (a bulk page); then it runs in the threadpool, where waiting
is harmless. Nor does the loop wait for a pooled connection: when the threadpool holds all of a
store's connections, the work goes to the threadpool too. With PostgreSQL everything runs in the
threadpool: each statement is a network round trip that must not block the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from keys.sqlstore import WouldWait, connects_now

T = TypeVar("T")
# Set in the request's scope["state"] by api/express.py when it tried this very read on the loop
# and had to give way: the route then goes straight to the threadpool instead of trying again.
TRIED_INLINE = "read_tried_inline"


async def run_short(request: Request, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``: on the loop if it can run now without waiting, else in the threadpool."""
    vault = request.app.state.vault
    if request.app.state.inline_writes and not request.scope.get("state", {}).get(TRIED_INLINE):
        # Yield once first: the loop then polls its sockets between one request's authentication
        # and its read. Without it, tasks ran back to back and requests waiting to be read piled up
        # (p99 at 32 connections 250-1,200 ms in back-to-back runs, 96-225 ms with it). The pools
        # are asked after the yield, right before the read takes its connections.
        await asyncio.sleep(0)
        if connects_now(vault.data_engine) and connects_now(vault.key_engine):
            try:
                return call(*args, wait=False, **kwargs)
            except WouldWait:
                pass
    return await run_in_threadpool(partial(call, *args, **kwargs))
