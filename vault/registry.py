"""The registry: agencies, their API clients, and who holds which role in which agency.

Client secrets are random (256 bits) and stored only as HMAC-SHA256 under a key derived by the
key provider: a stolen database does not yield usable secrets, and checking is constant-time.
Role assignments live here, not in Casbin: a change is visible to every worker on its next request.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keys.aead import Mac, constant_time_equal
from keys.sqlstore import Prepared, writing
from vault.audit.log import Actor, AuditLog, Event
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.grants import cascade
from vault.models import agencies, clients, role_assignments

ROLES = ("citizen", "registrar", "caseworker", "agency-app", "compliance-officer", "admin")
ASSIGNABLE_ROLES = ("registrar", "caseworker", "compliance-officer", "admin")
OPERATOR_AGENCY = "vault"
_CODE = re.compile(r"[a-z][a-z0-9-]{1,62}[a-z0-9]")
_SUBJECT = re.compile(r"[A-Za-z0-9@._:|-]{1,256}")
OPERATOR = Actor("operator", "operator", OPERATOR_AGENCY)


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


@dataclass(frozen=True)
class RoleAssignment:
    """Who holds which role in which agency."""

    subject: str
    agency: str
    role: str


class Registry:
    """Agencies, clients and role assignments."""

    def __init__(
        self, engine: Engine, secret_key: bytes, audit: AuditLog, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.audit = audit
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
    def create_client(self, agency: str, name: str, *, actor: Actor = OPERATOR) -> tuple[Client, str]:
        """A new client for ``agency``; returns it and its secret, which is shown this once."""
        self._require_active_agency(agency)
        _check_name(name)
        client_id = "cli_" + secrets.token_hex(12)
        secret = "cvs_" + secrets.token_urlsafe(32)
        with writing(self.engine) as conn:
            conn.execute(
                insert(clients).values(
                    client_id=client_id,
                    agency=agency,
                    name=name,
                    secret_hash=self._mac.digest(secret.encode()),
                    status="active",
                    created_at=self._clock(),
                )
            )
            self.audit.append(conn, actor, [Event("clients.create", reason=f"client {client_id} of {agency}")])
        return Client(client_id, agency, name, "active"), secret

    def clients(self, agency: str | None = None) -> list[Client]:
        """Clients of one agency, or all."""
        query = select(clients).order_by(clients.c.agency, clients.c.client_id)
        if agency is not None:
            query = query.where(clients.c.agency == agency)
        with self.engine.connect() as conn:
            return [Client(r.client_id, r.agency, r.name, r.status) for r in conn.execute(query)]

    def client(self, client_id: str) -> Client:
        """One client; NotFound when unknown."""
        with self.engine.connect() as conn:
            r = conn.execute(select(clients).where(clients.c.client_id == client_id)).one_or_none()
        if r is None:
            raise NotFound("no such client")
        return Client(r.client_id, r.agency, r.name, r.status)

    def revoke_client(self, client_id: str, *, actor: Actor = OPERATOR) -> None:
        """Revoke a client: its secret stops working and its tokens are refused on next use."""
        with writing(self.engine) as conn:
            if (
                conn.execute(update(clients).where(clients.c.client_id == client_id).values(status="revoked")).rowcount
                != 1
            ):
                raise NotFound("no such client")
            self.audit.append(conn, actor, [Event("clients.delete", reason=f"client {client_id} revoked")])

    def authenticate_client(self, client_id: str, secret: str) -> Client | None:
        """The client if the secret matches and it is active; constant-time in the secret."""
        with self.engine.connect() as conn:
            r = conn.execute(select(clients).where(clients.c.client_id == client_id[:64])).one_or_none()
        presented = self._mac.digest(secret.encode("utf-8", "replace")[:512])
        stored = r.secret_hash if r is not None else self._decoy
        if not constant_time_equal(presented, bytes(stored)) or r is None or r.status != "active":
            return None
        return Client(r.client_id, r.agency, r.name, r.status)

    def client_is_active(self, client_id: str) -> bool:
        """True while the client exists, is active, and its agency is active."""
        with self.engine.connect() as conn:
            r = conn.execute(
                select(clients.c.status, agencies.c.status.label("agency_status"))
                .join(agencies, agencies.c.code == clients.c.agency)
                .where(clients.c.client_id == client_id)
            ).one_or_none()
        return r is not None and r.status == "active" and r.agency_status == "active"

    # -- role assignments -------------------------------------------------------------------
    def assign(self, subject: str, agency: str, role: str, *, actor: Actor = OPERATOR) -> RoleAssignment:
        """Give ``subject`` a role in ``agency`` (idempotent)."""
        if role not in ASSIGNABLE_ROLES:
            raise ValidationFailed({"role": f"must be one of {', '.join(ASSIGNABLE_ROLES)}"})
        if not _SUBJECT.fullmatch(subject):
            raise ValidationFailed({"subject": "must be 1-256 characters of letters, digits and @._:|-"})
        self._require_active_agency(agency)
        try:
            with writing(self.engine) as conn:
                conn.execute(
                    insert(role_assignments).values(subject=subject, agency=agency, role=role, created_at=self._clock())
                )
                self.audit.append(
                    conn, actor, [Event("role-assignments.create", reason=f"{subject} {role} in {agency}")]
                )
        except IntegrityError:
            pass  # already assigned
        return RoleAssignment(subject, agency, role)

    def unassign(self, subject: str, agency: str, role: str, *, actor: Actor = OPERATOR) -> None:
        """Remove a role; effective on the subject's next request, in every process."""
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
            self.audit.append(conn, actor, [Event("role-assignments.delete", reason=f"{subject} {role} in {agency}")])

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
        if row is None:
            return False
        return agency == OPERATOR_AGENCY or row.status == "active"


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


def _check_code(code: str) -> None:
    if not _CODE.fullmatch(code):
        raise ValidationFailed({"code": "3-64 lowercase letters, digits and hyphens, starting with a letter"})


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > 200 or not name.isprintable():
        raise ValidationFailed({"name": "1-200 printable characters"})
