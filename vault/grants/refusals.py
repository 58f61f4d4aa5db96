"""Why a grant could not be spent, for the refusal a read returns: the precise reason, with an
expiry or exhaustion recorded as the grant's status (in a transaction of its own)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine, select, update

from keys.sqlstore import writing
from vault.audit.log import Event, iso
from vault.errors import NotFound, Refused, VaultError
from vault.grants.tables import grant_citizens, grants


def why_not(engine: Engine, grant_id: str, agency: str, now: datetime) -> VaultError:
    """Why a grant could not be spent: the precise reason, and expiry or exhaustion recorded."""
    with writing(engine) as conn:
        row = conn.execute(select(grants).where(grants.c.id == grant_id, grants.c.agency == agency)).one_or_none()
        if row is None:
            return NotFound("no such grant")
        if row.status in ("active", "pending") and row.expires_at <= iso(now):
            conn.execute(
                update(grants)
                .where(grants.c.id == grant_id, grants.c.status == row.status)
                .values(status="expired", status_reason=None)
            )
            return Refused("grant-expired", "the grant has expired")
        if row.status == "active" and row.uses >= row.max_uses:
            conn.execute(
                update(grants).where(grants.c.id == grant_id, grants.c.status == "active").values(status="exhausted")
            )
            return Refused("grant-exhausted", "the grant's uses are spent")
    reasons = {
        "pending": ("consent-required", "waiting for the citizen's consent"),
        "revoked": ("grant-revoked", f"the grant was revoked ({row.status_reason or 'revoked'})"),
        "expired": ("grant-expired", "the grant has expired"),
        "exhausted": ("grant-exhausted", "the grant's uses are spent"),
    }
    code, message = reasons.get(row.status, ("grant-unusable", "the grant cannot be used"))
    return Refused(code, message)


def refused_read_event(engine: Engine, event: Event, agency: str, grant_id: str) -> Event:
    """A refused read's event with the purpose of ``agency``'s grant and, when it names one
    citizen, that citizen: the refusal is about them (their access log shows the attempt, and a
    compliance officer filtering by citizen finds it, as a refused request is found)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(grants.c.purpose, grant_citizens.c.citizen_id)
            .join(grant_citizens, grant_citizens.c.grant_id == grants.c.id)
            .where(grants.c.id == grant_id, grants.c.agency == agency)
            .limit(2)
        ).all()
    if not rows:  # another agency's grant, or none: nothing more to say
        return event
    citizen = str(rows[0].citizen_id) if len(rows) == 1 else None
    return replace(event, purpose=rows[0].purpose, citizen_id=citizen)
