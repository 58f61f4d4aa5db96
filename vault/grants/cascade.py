"""Revoke the grants that depended on something that just went away, in the caller's transaction.

Withdrawn consent, an erased citizen, a retired or narrowed purpose, a retired agency: the grants
built on them are revoked in the same transaction as the change, so the next read finds them
revoked. (Every read re-checks the basis as well; the cascade makes the status say so. A consent
that expires, is narrowed or waits for renewal is not a cascade: it may come back, so the grant's
status is derived from it when inspected, vault.grants.status.)
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from vault.grants.tables import grant_citizens, grants

LIVE = ("pending", "active")


def revoke(
    conn: Connection,
    reason: str,
    *,
    purpose: str | None = None,
    agency: str | None = None,
    citizen_id: str | None = None,
    consent_id: str | None = None,
) -> int:
    """Revoke live grants matching exactly one criterion; returns how many."""
    query = update(grants).where(grants.c.status.in_(LIVE))
    if purpose is not None:
        query = query.where(grants.c.purpose == purpose)
    elif agency is not None:
        query = query.where(grants.c.agency == agency)
    elif citizen_id is not None:
        query = query.where(
            grants.c.id.in_(select(grant_citizens.c.grant_id).where(grant_citizens.c.citizen_id == citizen_id))
        )
    elif consent_id is not None:
        query = query.where(
            grants.c.id.in_(select(grant_citizens.c.grant_id).where(grant_citizens.c.consent_id == consent_id))
        )
    else:
        raise ValueError("revoke needs one criterion")
    return int(conn.execute(query.values(status="revoked", status_reason=reason[:100])).rowcount or 0)


def revoke_ids(conn: Connection, reason: str, ids: list[str]) -> int:
    """Revoke the live grants among ``ids`` (chosen by the caller); returns how many."""
    revoked = 0
    for start in range(0, len(ids), 500):  # bounded IN lists
        query = update(grants).where(grants.c.id.in_(ids[start : start + 500]), grants.c.status.in_(LIVE))
        revoked += int(conn.execute(query.values(status="revoked", status_reason=reason[:100])).rowcount or 0)
    return revoked
