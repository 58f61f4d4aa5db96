"""The registry: agencies, their API clients, and who holds which role in which agency.

Client secrets are random (256 bits) and stored only as HMAC-SHA256 under a key derived by the
key provider: a stolen database does not yield usable secrets, and checking is constant-time.
Role assignments live here, not in Casbin: a change is visible to every worker on its next request.

Separation of duties (docs/registry.md, issue 19): a client created or re-keyed by a person waits in
``pending-approval`` until a different admin approves it; nobody assigns themselves a role; the
roles that administer or review are given and taken only by the vault operator's admins; and
nobody holds admin and compliance-officer over the same agency. Refusals are audited.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.aead import Mac, constant_time_equal
from keys.sqlstore import Prepared, writing
from vault import duties
from vault.audit.log import Actor, AuditLog, Event
from vault.duties import (
    OPERATOR_ONLY_ROLES,
    WHY,
    assignment_refusal,
    conflicting,
    is_operator,
    is_vault_side,
)
from vault.errors import Conflict, NotFound, Refused, ValidationFailed
from vault.grants import cascade
from vault.models import agencies, clients, role_assignments

# Defined with the duty rules; the registry's callers name them from here.
OPERATOR_AGENCY = duties.OPERATOR_AGENCY
OPERATOR = duties.OPERATOR
ROLES = ("citizen", "registrar", "caseworker", "agency-app", "compliance-officer", "admin", "analyst")
ASSIGNABLE_ROLES = ("registrar", "caseworker", "compliance-officer", "admin", "analyst")
_CODE = re.compile(r"[a-z][a-z0-9-]{1,62}[a-z0-9]")
_SUBJECT = re.compile(r"[A-Za-z0-9@._:|-]{1,256}")
PENDING, ACTIVE, REVOKED = "pending-approval", "active", "revoked"
DEFAULT_SECRET_DAYS = 90


@dataclass(frozen=True)
class Agency:
    """A registered agency."""

    code: str
    name: str
    status: str


@dataclass(frozen=True)
class Client:
    """An agency's API client (never its secret)."""

    client_id: str
    agency: str
    name: str
    status: str
    created_by: str | None = None
    approved_by: str | None = None
    secret_expires_at: datetime | None = None


@dataclass(frozen=True)
class RoleAssignment:
    """Who holds which role in which agency."""

    subject: str
    agency: str
    role: str


class Registry:
    """Agencies, clients and role assignments."""

    def __init__(
        self,
        engine: Engine,
        secret_key: bytes,
        audit: AuditLog,
        clock: Callable[[], datetime] | None = None,
        secret_days: int = DEFAULT_SECRET_DAYS,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.secret_days = secret_days
        self._mac = Mac(secret_key)
        self._clock = clock or (lambda: datetime.now(UTC))
        # Equalises the time of a check for an unknown client id with that of a known one.
        self._decoy = self._mac.digest(b"decoy")

    # -- agencies ---------------------------------------------------------------------------
    def create_agency(self, code: str, name: str, *, actor: Actor = OPERATOR) -> Agency:
        """Register an agency; Conflict if the code is taken."""
        _check_code(code)
        _check_name(name)
        try:
            with writing(self.engine) as conn:
                conn.execute(insert(agencies).values(code=code, name=name, status="active", created_at=self._clock()))
                self.audit.append(conn, actor, [Event("agencies.create", reason=f"agency {code}")])
        except IntegrityError:
            raise Conflict("code") from None
        return Agency(code, name, "active")

    def agencies(self) -> list[Agency]:
        """Every agency."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(agencies).order_by(agencies.c.code)).all()
        return [Agency(r.code, r.name, r.status) for r in rows]

    def agency(self, code: str) -> Agency:
        """One agency; NotFound when unknown."""
        with self.engine.connect() as conn:
            r = conn.execute(select(agencies).where(agencies.c.code == code)).one_or_none()
        if r is None:
            raise NotFound("no such agency")
        return Agency(r.code, r.name, r.status)

    def set_agency_status(self, code: str, status: str, *, actor: Actor = OPERATOR) -> Agency:
        """Activate or retire an agency."""
        if status not in ("active", "retired"):
            raise ValidationFailed({"status": "must be active or retired"})
        with writing(self.engine) as conn:
            if conn.execute(update(agencies).where(agencies.c.code == code).values(status=status)).rowcount != 1:
                raise NotFound("no such agency")
            revoked = cascade.revoke(conn, "agency-retired", agency=code) if status == "retired" else 0
            self.audit.append(
                conn, actor, [Event("agencies.update", reason=f"agency {code} {status}; {revoked} grants revoked")]
            )
        return self.agency(code)

    def _require_active_agency(self, code: str) -> None:
        if code == OPERATOR_AGENCY:
            return
        if self.agency(code).status != "active":
            raise ValidationFailed({"agency": "agency is retired"})

    # -- clients ----------------------------------------------------------------------------
    def create_client(
        self, agency: str, name: str, *, actor: Actor = OPERATOR, secret_days: int | None = None
    ) -> tuple[Client, str]:
        """A new client for ``agency`` and its secret, shown this once. Created by a person it waits
        for a second admin's approval; created by the operator it is active at once."""
        self._require_active_agency(agency)
        _check_name(name)
        client_id = "cli_" + secrets.token_hex(12)
        secret = "cvs_" + secrets.token_urlsafe(32)
        status = ACTIVE if is_operator(actor) else PENDING
        with writing(self.engine) as conn:
            conn.execute(
                insert(clients).values(
                    client_id=client_id,
                    agency=agency,
                    name=name,
                    secret_hash=self._mac.digest(secret.encode()),
                    status=status,
                    created_at=self._clock(),
                    created_by=actor.subject,
                    secret_set_by=actor.subject,
                    approved_by=actor.subject if status == ACTIVE else None,
                    secret_expires_at=self._expiry(secret_days),
                )
            )
            self.audit.append(
                conn, actor, [Event("clients.create", reason=f"client {client_id} of {agency}; {status}")]
            )
        return self.client(client_id), secret

    def clients(self, agency: str | None = None) -> list[Client]:
        """Clients of one agency, or all."""
        query = select(clients).order_by(clients.c.agency, clients.c.client_id)
        if agency is not None:
            query = query.where(clients.c.agency == agency)
        with self.engine.connect() as conn:
            return [_client(r) for r in conn.execute(query)]

    def client(self, client_id: str) -> Client:
        """One client; NotFound when unknown."""
        with self.engine.connect() as conn:
            r = conn.execute(select(clients).where(clients.c.client_id == client_id)).one_or_none()
        if r is None:
            raise NotFound("no such client")
        return _client(r)

    def approve_client(self, client_id: str, *, actor: Actor = OPERATOR) -> Client:
        """Let a pending client have tokens: by an admin who neither created it nor holds its secret."""
        with writing(self.engine) as conn:
            r = conn.execute(select(clients).where(clients.c.client_id == client_id)).one_or_none()
            if r is None:
                raise NotFound("no such client")
            own = not is_operator(actor) and actor.subject in (r.created_by, r.secret_set_by)
            if not own:
                done = conn.execute(
                    update(clients)
                    .where(clients.c.client_id == client_id, clients.c.status == PENDING)
                    .values(status=ACTIVE, approved_by=actor.subject)
                ).rowcount
                if done != 1:
                    raise Conflict("status", "the client is not waiting for approval")
                self.audit.append(
                    conn, actor, [Event("clients.approve", reason=f"client {client_id} of {r.agency} approved")]
                )
        if own:
            self._refuse(actor, "clients.approve", "own-client", f"client {client_id} of {r.agency}")
        return self.client(client_id)

    def rotate_secret(
        self, client_id: str, *, actor: Actor = OPERATOR, secret_days: int | None = None
    ) -> tuple[Client, str]:
        """A new secret (shown this once); the old one stops at once. Set by a person, the client
        waits for a second admin's approval again, as when it was created."""
        secret = "cvs_" + secrets.token_urlsafe(32)
        status = ACTIVE if is_operator(actor) else PENDING
        with writing(self.engine) as conn:
            r = conn.execute(select(clients).where(clients.c.client_id == client_id)).one_or_none()
            if r is None:
                raise NotFound("no such client")
            if r.status == REVOKED:
                raise Conflict("status", "the client is revoked")
            conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id)
                .values(
                    secret_hash=self._mac.digest(secret.encode()),
                    status=status,
                    secret_set_by=actor.subject,
                    approved_by=actor.subject if status == ACTIVE else None,
                    secret_expires_at=self._expiry(secret_days),
                )
            )
            self.audit.append(
                conn, actor, [Event("clients.rotate", reason=f"client {client_id} of {r.agency}; {status}")]
            )
        return self.client(client_id), secret

    def revoke_client(self, client_id: str, *, actor: Actor = OPERATOR) -> None:
        """Revoke a client: its secret stops working and its tokens are refused on next use."""
        with writing(self.engine) as conn:
            if (
                conn.execute(update(clients).where(clients.c.client_id == client_id).values(status=REVOKED)).rowcount
                != 1
            ):
                raise NotFound("no such client")
            self.audit.append(conn, actor, [Event("clients.delete", reason=f"client {client_id} revoked")])

    def check_client(self, client_id: str, secret: str) -> tuple[Client | None, str]:
        """(the client, "") when the secret matches and the client may have a token, else (None, why
        not: invalid-client, client-pending, client-revoked, secret-expired). Constant-time in the
        secret; the status is consulted only after the secret matched, and the reason is for the audit
        log only: callers get one answer whatever it is."""
        with self.engine.connect() as conn:
            r = conn.execute(_CLIENT_STATE.where(clients.c.client_id == client_id[:64])).one_or_none()
        presented = self._mac.digest(secret.encode("utf-8", "replace")[:512])
        stored = r.secret_hash if r is not None else self._decoy
        if not constant_time_equal(presented, bytes(stored)) or r is None:
            return None, "invalid-client"
        refusal = self._refusal(r)
        return (None if refusal else _client(r)), refusal or ""

    def client_refusal(self, client_id: str) -> str | None:
        """Why a client's token must be refused now (client-revoked, client-pending, secret-expired), or None."""
        with self.engine.connect() as conn:
            r = conn.execute(_CLIENT_LIVE.where(clients.c.client_id == client_id)).one_or_none()
        return "client-revoked" if r is None else self._refusal(r)

    def _expiry(self, days: int | None) -> datetime:
        return self._clock() + timedelta(days=self.secret_days if days is None else days)

    def _refusal(self, r: Any) -> str | None:
        if r.status == PENDING:
            return "client-pending"
        if r.status != ACTIVE or r.agency_status != "active":
            return "client-revoked"
        if r.secret_expires_at is None or _aware(r.secret_expires_at) <= self._clock():
            return "secret-expired"
        return None

    def _refuse(self, actor: Actor, action: str, code: str, what: str) -> None:
        """Audit a separation-of-duties refusal in a transaction of its own, then raise it."""
        self.audit.record(actor, Event(action, outcome="denied", reason=f"{code}: {what}"))
        raise Refused(code, WHY[code])

    # -- role assignments -------------------------------------------------------------------
    def assign(self, subject: str, agency: str, role: str, *, actor: Actor = OPERATOR) -> RoleAssignment:
        """Give ``subject`` a role in ``agency`` (idempotent), within the separation-of-duties rules."""
        if role not in ASSIGNABLE_ROLES:
            raise ValidationFailed({"role": f"must be one of {', '.join(ASSIGNABLE_ROLES)}"})
        if not _SUBJECT.fullmatch(subject):
            raise ValidationFailed({"subject": "must be 1-256 characters of letters, digits and @._:|-"})
        self._require_active_agency(agency)
        what = f"{role} for {subject} in {agency}"
        refusal = assignment_refusal(actor, subject, role)
        if refusal is None:
            try:
                with writing(self.engine) as conn:
                    if conflicting(conn, subject, agency, role):
                        refusal = "duty-conflict"
                    else:
                        conn.execute(
                            insert(role_assignments).values(
                                subject=subject, agency=agency, role=role, created_at=self._clock()
                            )
                        )
                        self.audit.append(conn, actor, [Event("role-assignments.create", reason=what)])
            except IntegrityError:
                pass  # already assigned
        if refusal is not None:
            self._refuse(actor, "role-assignments.create", refusal, what)
        return RoleAssignment(subject, agency, role)

    def unassign(self, subject: str, agency: str, role: str, *, actor: Actor = OPERATOR) -> None:
        """Remove a role; effective on the subject's next request, in every process."""
        what = f"{role} for {subject} in {agency}"
        if role in OPERATOR_ONLY_ROLES and not is_vault_side(actor):
            self._refuse(actor, "role-assignments.delete", "operator-only-role", what)
        with writing(self.engine) as conn:
            result = conn.execute(
                delete(role_assignments).where(
                    role_assignments.c.subject == subject,
                    role_assignments.c.agency == agency,
                    role_assignments.c.role == role,
                )
            )
            if result.rowcount != 1:
                raise NotFound("no such role assignment")
            self.audit.append(conn, actor, [Event("role-assignments.delete", reason=what)])

    def assignments(self, agency: str | None = None) -> list[RoleAssignment]:
        """Role assignments of one agency, or all."""
        query = select(role_assignments).order_by(role_assignments.c.agency, role_assignments.c.subject)
        if agency is not None:
            query = query.where(role_assignments.c.agency == agency)
        with self.engine.connect() as conn:
            return [RoleAssignment(r.subject, r.agency, r.role) for r in conn.execute(query)]

    def holds(self, subject: str, agency: str, role: str) -> bool:
        """Does ``subject`` hold ``role`` in ``agency`` right now (and is the agency active)?"""
        with self.engine.connect() as conn:
            row = _HOLDS.first(conn, {"subject": subject, "agency": agency, "role": role})
        if row is None or (agency != OPERATOR_AGENCY and row.status != "active"):
            return False
        if role == "compliance-officer":  # rare (reviews), so the extra look-up stays off the hot path
            with self.engine.connect() as conn:  # fail closed on a pair of roles written before the rule
                return not conflicting(conn, subject, agency, role)
        return True


# One statement per request (every authenticated call checks its role live): the assignment and
# its agency's status, compiled once and run on the driver's cursor.
_HOLDS = Prepared(
    select(role_assignments.c.role, agencies.c.status)
    .select_from(role_assignments.outerjoin(agencies, agencies.c.code == role_assignments.c.agency))
    .where(
        role_assignments.c.subject == bindparam("subject"),
        role_assignments.c.agency == bindparam("agency"),
        role_assignments.c.role == bindparam("role"),
    )
    .limit(1)
)


# A client with its agency's status (the vault's own agency has no row: its clients are never active).
_CLIENT_STATE = select(clients, agencies.c.status.label("agency_status")).join(
    agencies, agencies.c.code == clients.c.agency
)
# What every request of an agency app checks (api/security/auth.py): three columns, no secret hash.
_CLIENT_LIVE = select(clients.c.status, clients.c.secret_expires_at, agencies.c.status.label("agency_status")).join(
    agencies, agencies.c.code == clients.c.agency
)


def _client(r: Any) -> Client:
    expires = r.secret_expires_at
    return Client(
        r.client_id, r.agency, r.name, r.status, r.created_by, r.approved_by, _aware(expires) if expires else None
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_code(code: str) -> None:
    if not _CODE.fullmatch(code):
        raise ValidationFailed({"code": "3-64 lowercase letters, digits and hyphens, starting with a letter"})


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > 200 or not name.isprintable():
        raise ValidationFailed({"name": "1-200 printable characters"})
