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
# Bytes that are not ASCII word characters become spaces (bytes >= 128 do not occur: ASCII input).
_WORDS_ONLY = bytes(c if chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(128)) + b" " * 128


def cannot_hold(text: str, own: Sequence[tuple[str, str]]) -> bool:
    """True when no recognizer of the default engine without NER can match ``text``: no digit, no @
    and, in its lower case, none of the words (two or more word characters) of the lower-cased own
    values."""
    return values_cannot_hold(text, [value for _, value in own])


def values_cannot_hold(text: str, own: Sequence[str]) -> bool:
    """:func:`cannot_hold` given the own values alone (their entity types play no part)."""
    if _MAY_HOLD.search(text):
        return False
    if not own:
        return True
    # The own values' words in one pass: a newline is neither a word character nor cased, so the
    # words of the joined lower case are exactly those of each value lower-cased on its own.
    words = "\n".join(own).lower()
    if not words.isascii():
        lowered = text.lower()
        return not any(token in lowered for token in _WORD.findall(words))
    # ASCII (the usual case): the words are the runs of [A-Za-z0-9_], split out by one byte
    # translation, several times faster than the regex.
    lowered = text.lower()
    for token in words.encode("ascii").translate(_WORDS_ONLY).decode("ascii").split():
        if len(token) > 1 and token in lowered:
            return False
    return True
