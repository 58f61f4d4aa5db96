"""Helpers for the grant tests: actors, a settable clock, invented citizens, and the reader process
of the withdrawal race.

Every value written here is invented (example agencies, "Testworth" family names).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from threading import Barrier
from typing import Any

from sqlalchemy import Engine, func, select

from vault.audit.log import Actor
from vault.audit.tables import audit_events
from vault.errors import NotFound, Refused
from vault.runtime import Vault, open_vault
from vault.settings import Settings

BENEFITS = Actor("caseworker@benefits-office", "caseworker", "benefits-office", request_id="req-grants-0001")
TAX = Actor("caseworker@tax-office", "caseworker", "tax-office", request_id="req-grants-0002")
CLINIC = Actor("caseworker@city-clinic", "caseworker", "city-clinic", request_id="req-grants-0003")


def citizen_actor(citizen_id: str) -> Actor:
    """The citizen acting from their own view (as api/security/auth.py builds it)."""
    return Actor(citizen_id, "citizen", "-")


@dataclass
class Clock:
    """A clock the test moves by hand; installed on the services in place of the wall clock."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def install_clock(vault: Vault, clock: Callable[[], datetime]) -> None:
    """Make the grant, consent and purpose services read ``clock`` (the audit log keeps the wall clock)."""
    vault.grants._clock = clock
    vault.consents._clock = clock
    vault.purposes._clock = clock


def citizen_fields(n: int) -> dict[str, object]:
    """A complete invented profile (every field of the identity, contact and financial categories)."""
    return {
        "given_name": f"Grantly{n}",
        "family_name": "Testworth",
        "date_of_birth": f"19{70 + n:02d}-0{1 + n % 9}-1{n % 10}",
        "national_id": f"{100 + n:03d}-555-{200 + n:03d}",
        "email": f"grantly{n}@example.org",
        "phone": f"+1555010{n % 10}",
        "address": f"{n} Testworth Lane",
        "income": 30_000 + 1000 * n,
    }


def count_events(engine: Engine, action: str, outcome: str, grant_id: str | None = None) -> int:
    """Audit events with this action and outcome (of one grant when given)."""
    query = select(func.count()).where(audit_events.c.action == action, audit_events.c.outcome == outcome)
    if grant_id is not None:
        query = query.where(audit_events.c.grant_id == grant_id)
    with engine.connect() as conn:
        return int(conn.scalar(query.select_from(audit_events)) or 0)


# One read as a reader process saw it: wall-clock ns just before the call and just after it returned
# or raised, and None when it returned the citizen's values, else why not (the refusal reason, or
# "returned-no-data" for a return without values).
ReadRecord = tuple[int, int, str | None]


def read_worker(
    settings: Settings,
    grant_id: str,
    worker: int,
    start: Barrier,
    stop: EventType,
    counts: Any,
    results: Queue[Any],
) -> None:
    """Child process: open the vault, wait for the others, then read through the grant until told to
    stop, counting reads in ``counts[2 * worker]`` and successes in ``counts[2 * worker + 1]`` (a
    shared array) for the parent to watch. Reports (worker, [ReadRecord ...], error or None). Times
    are time.time_ns(): one clock for every process on the machine."""
    log: list[ReadRecord] = []
    try:
        vault = open_vault(settings)
        start.wait(timeout=120)
        while not stop.is_set():
            began = time.time_ns()
            try:
                _, records, _ = vault.grants.read(BENEFITS, grant_id)
                why = None if records and all(v for _, v in records) else "returned-no-data"
            except Refused as exc:
                why = exc.reason
            except NotFound:
                why = "not-found"
            log.append((began, time.time_ns(), why))
            counts[2 * worker] += 1
            if why is None:
                counts[2 * worker + 1] += 1
            else:
                time.sleep(0.002)  # refusals are cheap: do not flood the log while waiting for the stop
        vault.close()
        results.put((worker, log, None))
    except BaseException:
        results.put((worker, log, traceback.format_exc()))
