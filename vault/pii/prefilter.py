"""The PII scan's pre-filter, importable without Presidio (vault.pii.engine loads it on import).

Every pattern recognizer of the default engine needs a digit or an @ (identifiers, cards, IBANs,
phones, dates, emails); without NER, names and places are found only as the citizen's own values.
So a text with none of those cannot match anything: the engine skips Presidio for it, and intake
screening (which runs for every imported profile) need not even load Presidio to know that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_MAY_HOLD = re.compile(r"[0-9@]")
_WORD = re.compile(r"\w{2,}")


def cannot_hold(text: str, own: Sequence[tuple[str, str]]) -> bool:
    """True when no recognizer of the default engine without NER can match ``text``."""
    if _MAY_HOLD.search(text):
        return False
    lowered = text.lower()
    return not any(token in lowered for _, value in own for token in _WORD.findall(value.lower()))
