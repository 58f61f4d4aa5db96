"""Whether a citizen's consent covers a use, and if not, precisely why.

One rule for every caller: a grant request (is there a basis?), a grant read (is it still there?)
and a grant's reported status (vault.grants.status). A consent covers a use when it is active,
unexpired, given for the purpose's current version and includes the categories used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

# The refusal reasons, from the least to the most specific: a reason found on an active consent
# says more than the withdrawal of an older one.
REQUIRED = "consent-required"  # never given
WITHDRAWN = "consent-withdrawn"
EXPIRED = "consent-expired"
PURPOSE_CHANGED = "consent-purpose-changed"  # given for an older version of the purpose
NARROWED = "consent-narrowed"  # no longer includes the categories used


def judge(
    rows: Iterable[Any], categories: Sequence[str], purpose_version: int, stamp: str
) -> tuple[str | None, str | None]:
    """(id of the consent among ``rows`` that covers the use, None) or (None, why not). ``rows``
    have ``id``, ``status``, ``categories`` (JSON), ``expires_at`` and ``purpose_version``;
    ``stamp`` is now in the stored time format."""
    reason = REQUIRED
    for r in rows:
        if r.status != "active":
            reason = WITHDRAWN if reason == REQUIRED else reason
            continue
        if r.expires_at is not None and r.expires_at <= stamp:
            reason = EXPIRED
        elif int(r.purpose_version) != purpose_version:
            reason = PURPOSE_CHANGED
        elif not set(categories) <= set(json.loads(r.categories)):
            reason = NARROWED
        else:
            return str(r.id), None
    return None, reason
