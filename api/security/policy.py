"""Authorisation decisions: the one module that touches Casbin (pycasbin).

The model and policy are files under policies/ that security review reads. If they cannot be
loaded the app does not start; if an evaluation fails the answer is "deny".
"""

from __future__ import annotations

import logging
import threading
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
        self._decisions: dict[tuple[str, str, str, str, str], bool] = {}
        self._lock = threading.Lock()

    def allows(self, role: str, agency: str, resource: str, action: str, owner: str = NO_OWNER) -> bool:
        """True only when an allow rule matches; any error is a denial (and is not remembered).

        Decisions are memoised: the policy is loaded once and never changes while the process
        runs (role *holders* live in the database and are checked per request, not here). The
        lock serialises Casbin itself, whose matcher compiles expressions with ``ast.parse``;
        on Python 3.11 concurrent calls from threads intermittently raise SystemError
        (CPython issue 106905), which would deny legitimate requests.
        """
        key = (role, agency, resource, action, owner)
        decided = self._decisions.get(key)
        if decided is not None:
            return decided
        with self._lock:
            try:
                decided = bool(self._enforcer.enforce(role, agency, resource, action, owner))
            except Exception as exc:
                log.error("policy evaluation failed; denying", extra={"cause": type(exc).__name__})
                return False
            if len(self._decisions) < 100_000:
                self._decisions[key] = decided
        return decided

    def rules(self) -> list[list[str]]:
        """Every policy line (for route-coverage tests and documentation)."""
        return [list(map(str, rule)) for rule in self._enforcer.get_policy()]
