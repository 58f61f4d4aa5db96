"""A grant's status as it stands, derived when it is inspected (GET /v1/grants/{id}, the citizen's
export), so that it never says ``active`` for a grant a read would refuse.

The stored status changes only on events (approval, revocation, a cascade, a read refused for
expiry or exhaustion); the read itself stays one conditional UPDATE (docs/benchmarks.md) and refuses
with the precise reason. Here a stored ``active`` (or ``pending``) grant is reported as ``expired`` past its expiry,
``exhausted`` with its uses spent, and ``suspended`` (``status_reason`` the consent's refusal
reason: consent-expired, consent-narrowed, consent-purpose-changed, consent-withdrawn) while a
citizen's consent no longer covers it. Suspended is not stored: a renewed or widened consent makes
the grant usable again, as the read path would find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from itertools import groupby

from sqlalchemy import Connection, and_, select

from vault.audit.log import iso
from vault.consent import coverage
from vault.consent.tables import consents
from vault.grants.model import Grant
from vault.grants.tables import grant_citizens

SUSPENDED = "suspended"


def derive(
    conn: Connection,
    grant: Grant,
    categories: Sequence[str],
    purpose_version: int,
    now: datetime,
    citizen_id: str | None = None,
) -> Grant:
    """``grant`` with the status a read at ``now`` would meet (see the module docstring). With
    ``citizen_id`` (a citizen's own view), only that citizen's consent counts: another citizen's
    lapsed consent on a shared grant is theirs, not to be shown to a co-citizen."""
    if grant.status not in ("active", "pending"):
        return grant
    stamp = iso(now)
    if grant.expires_at <= stamp:  # a request nobody approved in time expires too
        return replace(grant, status="expired", status_reason=None)
    if grant.status == "pending":
        return grant
    if grant.uses >= grant.max_uses:
        return replace(grant, status="exhausted")
    if grant.lawful_basis != "consent":
        return grant
    reason = lapse(conn, grant, categories, purpose_version, stamp, citizen_id)
    return replace(grant, status=SUSPENDED, status_reason=reason) if reason else grant


def lapse(
    conn: Connection,
    grant: Grant,
    categories: Sequence[str],
    purpose_version: int,
    stamp: str,
    citizen_id: str | None = None,
) -> str | None:
    """The refusal reason of the first of the grant's citizens (in reading order; only
    ``citizen_id`` when given) whose consent no longer covers it; None when every one's does. One
    query for all its citizens."""
    which = grant_citizens.c.grant_id == grant.id
    if citizen_id is not None:
        which = and_(which, grant_citizens.c.citizen_id == citizen_id)
    rows = conn.execute(
        select(
            grant_citizens.c.citizen_id,
            consents.c.id,
            consents.c.status,
            consents.c.categories,
            consents.c.expires_at,
            consents.c.purpose_version,
        )
        .select_from(
            grant_citizens.outerjoin(
                consents,
                and_(
                    consents.c.citizen_id == grant_citizens.c.citizen_id,
                    consents.c.agency == grant.agency,
                    consents.c.purpose == grant.purpose,
                ),
            )
        )
        .where(which)
        .order_by(grant_citizens.c.citizen_id, consents.c.updated_at)
    )
    for _, group in groupby(rows, key=lambda r: r.citizen_id):
        found = [r for r in group if r.id is not None]
        covering, reason = coverage.judge(found, categories, purpose_version, stamp)
        if covering is None:
            return reason
    return None
