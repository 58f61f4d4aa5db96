"""Generated interaction facts for the insights tests and benchmark (no citizen, no text: as the table)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, insert

from vault.interactions.facts import interaction_facts

DAY = 86400
# 2026-03-01 .. : the tests' fixed "now" is START + 100 days, so every fact is in the past.
START = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
NOW = START + 100 * DAY
SERVICES = {
    "tax-office": ["tax-question", "tax-refund", "tax-payment"],
    "benefits-office": ["housing-benefit", "income-support", "benefit-appeal"],
    "city-clinic": ["appointment", "vaccination", "records-request"],
    "public-works": ["pothole", "streetlight", "graffiti", "missed-collection"],
}
CHANNELS = ("web", "phone", "counter", "email", "app")
AREAS = tuple(f"district-{i:02d}" for i in range(1, 11))


def fact(
    rng: random.Random,
    created: int,
    *,
    agency: str | None = None,
    service: str | None = None,
    area: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """One plausible fact created at ``created``: acknowledged in hours, resolved in days, rated 1..5."""
    agency = agency or rng.choice(sorted(SERVICES))
    service = service or rng.choice(SERVICES[agency])
    ack = created + int(rng.expovariate(1 / 7200)) if rng.random() < 0.9 else None
    res = ack + int(rng.expovariate(1 / (3 * DAY))) if ack is not None and rng.random() < 0.75 else None
    return {
        "interaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "agency": agency,
        "service_code": service,
        "kind": rng.choice(("request", "complaint", "enquiry", "feedback")),
        "channel": channel or rng.choice(CHANNELS),
        "area": area or rng.choice(AREAS),
        "status": "resolved" if res else ("acknowledged" if ack else "open"),
        "created_s": created,
        "acknowledged_s": ack,
        "resolved_s": res,
        "closed_s": None,
        "ack_target_s": DAY,
        "resolve_target_s": 7 * DAY,
        "rating": rng.randint(1, 5) if res is not None and rng.random() < 0.5 else None,
    }


def facts(n: int, seed: int = 15, start: int = START, days: int = 90, **fixed: Any) -> Iterator[dict[str, Any]]:
    """``n`` facts created over ``days`` days from ``start``."""
    rng = random.Random(seed)
    for _ in range(n):
        yield fact(rng, start + rng.randrange(days * DAY), **fixed)


def fill(engine: Engine, rows: Sequence[dict[str, Any]] | Iterator[dict[str, Any]], batch: int = 20_000) -> int:
    """Insert facts in batches; returns how many."""
    count, chunk = 0, []
    with engine.begin() as conn:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                conn.execute(insert(interaction_facts), chunk)
                count, chunk = count + len(chunk), []
        if chunk:
            conn.execute(insert(interaction_facts), chunk)
            count += len(chunk)
    return count


def day(text: str) -> date:
    """A date from its ISO form."""
    return date.fromisoformat(text)
