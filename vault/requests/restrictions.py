"""Restrictions of processing in force: the one check grant reads make (vault/grants/service.py).

A completed restriction or (public-task) objection request adds a row per purpose; lifting sets
``lifted_at``. A grant read for a purpose restricted for any citizen of the page is refused with
``processing-restricted``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from vault.requests.tables import processing_restrictions as pr


def restricted(conn: Connection, citizen_ids: Sequence[str], purpose: str) -> list[str]:
    """The citizens among ``citizen_ids`` whose data may not be processed for ``purpose`` now."""
    found: set[str] = set()
    ids = list(citizen_ids)
    for start in range(0, len(ids), 1000):
        rows = conn.execute(
            select(pr.c.citizen_id).where(
                pr.c.purpose == purpose, pr.c.lifted_at.is_(None), pr.c.citizen_id.in_(ids[start : start + 1000])
            )
        )
        found.update(str(r[0]) for r in rows)
    return sorted(found)


def in_force(conn: Connection, citizen_id: str) -> list[str]:
    """The purposes restricted for a citizen now."""
    rows = conn.execute(
        select(pr.c.purpose).where(pr.c.citizen_id == citizen_id, pr.c.lifted_at.is_(None)).order_by(pr.c.purpose)
    )
    return sorted({str(r[0]) for r in rows})


def impose(conn: Connection, request_id: str, citizen_id: str, purposes: Sequence[str], at: str) -> None:
    """Put a completed restriction or objection in force, one row per purpose."""
    conn.execute(
        pr.insert(),
        [{"request_id": request_id, "purpose": p, "citizen_id": citizen_id, "since": at} for p in purposes],
    )


def lift(conn: Connection, request_id: str, at: str) -> None:
    """End the restrictions a request put in force."""
    conn.execute(pr.update().where(pr.c.request_id == request_id, pr.c.lifted_at.is_(None)).values(lifted_at=at))
