"""The pre-filter's own-word check gives exactly the answers of its first, plain definition (kept
below as the reference), for ASCII and non-ASCII texts and own values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.pii.prefilter import cannot_hold

_MAY_HOLD = re.compile(r"[0-9@]")
_WORD = re.compile(r"\w{2,}")


def reference(text: str, own: Sequence[tuple[str, str]]) -> bool:
    if _MAY_HOLD.search(text):
        return False
    lowered = text.lower()
    return not any(token in lowered for _, value in own for token in _WORD.findall(value.lower()))


# Small alphabets so that own words do turn up in texts; case pairs, separators, a final sigma,
# letters whose lower case changes length, digits outside ASCII and a lone surrogate.
_ASCII = "abAB_xy -.,'\n\t"
_WIDE = _ASCII + "\u00c9\u00e9\u00df\u1e9e\u03a3\u03c3\u03c2\u0130i\u01c5\u0663\u00b2\u0301\ud800"
words = st.text(alphabet=_ASCII, max_size=14) | st.text(alphabet=_WIDE, max_size=14)
owns = st.lists(st.tuples(st.sampled_from(["PERSON", "LOCATION", "EMAIL_ADDRESS"]), words), max_size=5)


@settings(max_examples=2000, deadline=None)
@given(text=words, own=owns)
def test_the_own_word_check_answers_as_its_reference(text: str, own: list[tuple[str, str]]) -> None:
    assert cannot_hold(text, own) == reference(text, own)


def test_examples() -> None:
    own = [("PERSON", "Zebulon"), ("LOCATION", "7 Treacle Mews, Nowhereville"), ("PERSON", "ΟΔΥΣΣΕΥΣ")]
    assert cannot_hold("Routine check-up; no findings.", own)
    assert not cannot_hold("Lives on treacle mews.", own)
    assert not cannot_hold("Mr ZEBULONS was seen", own)  # a substring is enough for the pre-filter
    # the own value in lower case, with a final sigma
    assert not cannot_hold("seen by \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2", own)
    assert not cannot_hold("Seen on 12 May.", [])
    assert not cannot_hold("mail me @ home", [])
    assert cannot_hold("Seen on a Tuesday.", [])
