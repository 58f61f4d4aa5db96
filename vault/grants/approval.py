"""A citizen's view of the requests waiting for their consent, and their approval.

Approving adds exactly what the citizen approved to the consent they hold for the agency and
purpose: a new version of that consent (the same one, even after a withdrawal) whose categories
are those they held plus those the request needs, with the expiry they choose, or the one it
already had (never silently extended or dropped). The preview shown with each request is computed
by the same function the approval uses, for the purpose's current version, in one transaction with
the grant's activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from keys.sqlstore import writing
from vault.audit.log import Actor, Event, iso
from vault.consent.service import ConsentPreview
from vault.errors import Conflict, NotFound, Refused, ValidationFailed
from vault.grants.model import Grant, grant_from_row
from vault.grants.tables import grant_citizens, grants

if TYPE_CHECKING:
    from vault.grants.service import GrantService

TYP = "access-grant+jwt"


class Keep(Enum):
    """Approve without choosing an expiry: the consent keeps the one it has."""

    EXPIRY = "keep"


KEEP = Keep.EXPIRY


@dataclass(frozen=True)
class PendingRequest:
    """A request waiting for the citizen, with what approving it would make of their consent."""

    grant: Grant
    consent: ConsentPreview


def requests_for(svc: GrantService, citizen_id: str) -> list[PendingRequest]:
    """The citizen's pending requests, each with its consent preview."""
    pending = svc.pending_for(citizen_id)
    now = svc.now()
    with svc.engine.connect() as conn:
        return [
            PendingRequest(
                g,
                svc.consents.preview(
                    conn, citizen_id, g.agency, svc.purposes.get(g.purpose, conn), svc.categories_of(g.fields), now
                ),
            )
            for g in pending
            if g.status == "pending"  # not those expired unapproved (reported as expired)
        ]


def approve(
    svc: GrantService,
    actor: Actor,
    citizen_id: str,
    grant_id: str,
    expires_at: datetime | Keep | None = KEEP,
    purpose_version: int | None = None,
) -> Grant:
    """Approve a pending request (see the module docstring). ``expires_at``: the consent's expiry
    the citizen chose (None: until withdrawn); ``purpose_version``: the version they were shown, a
    409 when the purpose changed since."""
    now = svc.now()
    if isinstance(expires_at, datetime) and (expires_at.tzinfo is None or expires_at <= now):
        raise ValidationFailed({"expires_at": "a future time with a zone"})
    if svc.consents.gate is not None:  # approving gives a consent: a minor's may need a parent's (issue 17)
        with svc.engine.connect() as conn:  # before the write transaction: the gate reads (and audits) itself
            purpose_code = conn.scalar(select(grants.c.purpose).where(grants.c.id == grant_id))
        if purpose_code is not None:
            svc.consents.gate(citizen_id, purpose_code, actor)
    with writing(svc.engine) as conn:
        row = conn.execute(
            select(grants)
            .join(grant_citizens, grant_citizens.c.grant_id == grants.c.id)
            .where(grants.c.id == grant_id, grant_citizens.c.citizen_id == citizen_id)
        ).one_or_none()
        if row is None or row.status != "pending":
            raise NotFound("no such pending request")
        grant = grant_from_row(row)
        if grant.expires_at <= iso(now):
            raise Refused("grant-expired", "the request expired before it was approved")
        purpose = svc.purposes.get(grant.purpose, conn)
        if purpose.status != "active" or purpose.lawful_basis != "consent" or grant.agency not in purpose.agencies:
            raise Refused("purpose-retired", "the purpose can no longer be consented to")
        if purpose_version is not None and purpose_version != purpose.version:
            raise Conflict("purpose_version", "the purpose changed since it was shown; review the request again")
        asked = svc.categories_of(grant.fields)
        if set(asked) - set(purpose.categories):
            raise Refused("fields-outside-purpose", "the purpose no longer covers the fields asked for")
        preview = svc.consents.preview(conn, citizen_id, grant.agency, purpose, asked, now)
        expiry = preview.expires_at if isinstance(expires_at, Keep) else expires_at
        consent_id = svc.consents.record(
            conn, citizen_id, grant.agency, purpose, preview.categories, expiry, now, actor
        )
        payload = {
            "iss": "citizen-vault",
            "jti": grant.id,
            "agency": grant.agency,
            "purpose": grant.purpose,
            "purpose_version": purpose.version,
            "lawful_basis": grant.lawful_basis,
            "fields": grant.fields,
            "citizens": [citizen_id],
            "consent": consent_id,
            "iat": int(now.timestamp()),
            "exp": int(datetime.fromisoformat(grant.expires_at.replace("Z", "+00:00")).timestamp()),
            "max_uses": grant.max_uses,
            "case_ref": grant.case_ref,
        }
        changed = conn.execute(
            update(grants)
            .where(grants.c.id == grant_id, grants.c.status == "pending")
            .values(status="active", status_reason=None, jws=svc.signing.sign_jws(payload, TYP))
        ).rowcount
        if changed != 1:  # approved or revoked concurrently: nothing of this transaction is kept
            raise NotFound("no such pending request")
        conn.execute(
            update(grant_citizens)
            .where(grant_citizens.c.grant_id == grant_id, grant_citizens.c.citizen_id == citizen_id)
            .values(consent_id=consent_id)
        )
        svc.audit.append(
            conn,
            actor,
            [
                Event(
                    "grants.approve",
                    citizen_id=citizen_id,
                    grant_id=grant_id,
                    purpose=grant.purpose,
                    reason=f"consent until {iso(expiry) if isinstance(expiry, datetime) else expiry or 'withdrawn'}",
                )
            ],
        )
    return svc.get(grant.agency, grant_id)


DECLINED = "declined-by-citizen"  # the status_reason of a request its citizen declined


def decline(svc: GrantService, actor: Actor, citizen_id: str, grant_id: str) -> Grant:
    """The citizen declines a pending request: it ends (revoked, ``declined-by-citizen``) and their
    consent is left exactly as it was. Another citizen's request is NotFound, like an absent one."""
    with writing(svc.engine) as conn:
        row = conn.execute(
            select(grants.c.agency, grants.c.purpose, grants.c.status)
            .join(grant_citizens, grant_citizens.c.grant_id == grants.c.id)
            .where(grants.c.id == grant_id, grant_citizens.c.citizen_id == citizen_id)
        ).one_or_none()
        if row is None or row.status != "pending":
            raise NotFound("no such pending request")
        changed = conn.execute(
            update(grants)
            .where(grants.c.id == grant_id, grants.c.status == "pending")
            .values(status="revoked", status_reason=DECLINED)
        ).rowcount
        if changed != 1:  # approved or revoked concurrently
            raise NotFound("no such pending request")
        svc.audit.append(
            conn, actor, [Event("grants.decline", citizen_id=citizen_id, grant_id=grant_id, purpose=row.purpose)]
        )
    return svc.get(row.agency, grant_id)
