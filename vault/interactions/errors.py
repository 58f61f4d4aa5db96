"""Errors of the interactions domain (mapped to HTTP in api/errors.py).

    VaultError
    └── InteractionError            a stable ``reason`` code and, per input, what is wrong
        ├── InteractionInvalid      bad input: unknown service, missing attributes, oversize text (422)
        └── TransitionRefused       the item's state does not allow it: resolving a closed item,
                                    rating before resolution, rating twice (409)

Another agency's item is vault.errors.Refused (403, reason ``other-agency``); an item the caller
may not know of is vault.errors.NotFound. Messages never carry a text, a contact detail or a place.
"""

from __future__ import annotations

from vault.errors import VaultError


class InteractionError(VaultError):
    """An interaction request refused with a reason the caller can act on."""

    def __init__(self, reason: str, message: str, problems: dict[str, str] | None = None) -> None:
        self.reason = reason
        self.problems = problems or {}
        super().__init__(f"{reason}: {message}")


class InteractionInvalid(InteractionError):
    """The input does not describe a valid interaction."""


class TransitionRefused(InteractionError):
    """The item's current status does not allow this change."""
