"""Representation refusals. Every one is a :class:`vault.errors.Refused` (403 with its reason):

    Refused
    └── RepresentationRefused   no-representation, outside-scope, not-yet-valid, representation-ended,
                                child-of-age, mandate-by-citizen-only, parent-consent-required,
                                not-a-minor, not-delegable, self-representation

``no-representation`` is the one answer for "no relation" and "no such person", so a refusal never
tells a caller whether a citizen it may not act for exists.
"""

from __future__ import annotations

from vault.errors import Refused


class RepresentationRefused(Refused):
    """A representation rule says no; ``reason`` is the stable code above."""
