"""Separation of duties in the registry (issue 19; docs/registry.md): who may approve, assign and hold what.

Whoever mints credentials or gives roles must not be able to use them or review themselves:

* a client created or re-keyed by a person needs a different admin's approval before it gets tokens;
* nobody assigns a role to themselves;
* the roles that administer or review (admin, compliance-officer) are given and taken only by the
  vault operator's admins (or the operator at the command line);
* nobody reviews an agency they administer or work in: compliance-officer excludes admin,
  caseworker and registrar over the same agency (the vault's own agency spans all), or an officer
  could audit their own reads and approve their colleagues' deferrals.

The analyst role (insights, docs/insights.md) conflicts with none: it sees only differentially
private aggregates, whose guarantee holds whatever else the analyst knows, and reviews nobody.
"""

from __future__ import annotations

from sqlalchemy import Connection, or_, select

from vault.audit.log import Actor
from vault.models import role_assignments

OPERATOR_AGENCY = "vault"
OPERATOR = Actor("operator", "operator", OPERATOR_AGENCY)
OPERATOR_ONLY_ROLES = ("admin", "compliance-officer")

# Refusal codes (the Refused reason and the audit event's reason prefix) and what the caller is told.
WHY = {
    "own-client": "a client must be approved by an admin other than the one who created it or set its secret",
    "self-assignment": "nobody assigns a role to themselves",
    "operator-only-role": "only the vault operator's admins assign or remove the admin and compliance-officer roles",
    "duty-conflict": "nobody reviews an agency they administer or work in: compliance-officer excludes "
    "admin, caseworker and registrar over the same agency",
}

# Roles that may not be held with each other over one agency: reviewing and being reviewed.
REVIEWED_ROLES = ("admin", "caseworker", "registrar")
CONFLICTS = {"compliance-officer": REVIEWED_ROLES} | {role: ("compliance-officer",) for role in REVIEWED_ROLES}


def is_operator(actor: Actor) -> bool:
    """The operator at the command line (seeding, maintenance): holds the host and keys anyway, so a
    second-person rule cannot bind it; its actions are audited as the operator's."""
    return actor.role == "operator" and actor.agency == OPERATOR_AGENCY


def is_vault_side(actor: Actor) -> bool:
    """The operator, or an admin of the operator's own agency."""
    return is_operator(actor) or (actor.role == "admin" and actor.agency == OPERATOR_AGENCY)


def assignment_refusal(actor: Actor, subject: str, role: str) -> str | None:
    """The rule a role assignment by ``actor`` breaks before any look-up (self-assignment,
    operator-only-role), or None."""
    if not is_operator(actor) and actor.subject == subject:
        return "self-assignment"
    if role in OPERATOR_ONLY_ROLES and not is_vault_side(actor):
        return "operator-only-role"
    return None


def conflicting(conn: Connection, subject: str, agency: str, role: str) -> bool:
    """Would ``subject`` both review and be reviewed (CONFLICTS) over one agency with ``role`` in
    ``agency``? The vault's own agency spans every agency: its admins administer, its officers
    review, all of them."""
    others = CONFLICTS.get(role)
    if others is None:
        return False
    c = role_assignments.c
    query = select(c.agency).where(c.subject == subject, c.role.in_(others))
    if agency != OPERATOR_AGENCY:
        query = query.where(or_(c.agency == agency, c.agency == OPERATOR_AGENCY))
    return conn.execute(query.limit(1)).first() is not None
