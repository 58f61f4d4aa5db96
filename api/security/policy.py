"""Authorisation decisions: the one module that touches Casbin (pycasbin).

The model and policy are files under policies/ that security review reads. If they cannot be
loaded the app does not start; if an evaluation fails the answer is "deny".
"""

from __future__ import annotations

import logging
from pathlib import Path

import casbin

log = logging.getLogger(__name__)

NO_OWNER = "-"


class PolicyUnavailable(Exception):
    """The Casbin model or policy cannot be loaded."""


class PolicyEngine:
    """Answers: may this role, in this agency, do this action on this kind of resource?"""

    def __init__(self, model: Path, policy: Path) -> None:
        try:
            self._enforcer = casbin.Enforcer(str(model), str(policy))
        except Exception as exc:  # any failure to load is fatal: fail closed at start-up
            raise PolicyUnavailable(f"cannot load Casbin policy from {model} / {policy}: {exc}") from None
        if not self._enforcer.get_policy():
            raise PolicyUnavailable(f"Casbin policy {policy} has no rules")

    def allows(self, role: str, agency: str, resource: str, action: str, owner: str = NO_OWNER) -> bool:
        """True only when an allow rule matches; any error is a denial."""
        try:
            return bool(self._enforcer.enforce(role, agency, resource, action, owner))
        except Exception as exc:
            log.error("policy evaluation failed; denying", extra={"cause": type(exc).__name__})
            return False

    def rules(self) -> list[list[str]]:
        """Every policy line (for route-coverage tests and documentation)."""
        return [list(map(str, rule)) for rule in self._enforcer.get_policy()]
