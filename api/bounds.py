"""Bounded types for every parameter and body member, defined once (issue 19, finding 2).

A value that passes one of these can be stored, compared and formatted without overflowing or
failing to encode: a sequence number fits a signed 64-bit column, an instant converts to UTC and
back with thousands of years to spare, and text holds neither control characters nor lone
surrogates. The limits are in the OpenAPI document, so clients and schemathesis see them too.

A note on text: pydantic-core refuses a lone surrogate (JSON's ``"\\ud800"``, which has no UTF-8
form) in any string that has a ``pattern``, before the pattern is tried (``string_unicode``); each
text type below has one, so none of them can carry a surrogate to the vault.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

SEQ_MAX = 2**63 - 1  # the largest value of a signed 64-bit integer (BIGINT)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

# One line of text: no C0 or C1 control character, no DEL.
LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Free text: as a line, but tabs and line breaks are allowed.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def _within_range(value: datetime) -> datetime:
    """Refuse an instant that cannot be converted to UTC, or lies outside [EARLIEST, LATEST]."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return value


Seq = Annotated[int, Field(ge=0, le=SEQ_MAX, description="A sequence number (0 to 2**63-1).")]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_within_range),
    Field(description=f"An ISO 8601 instant with a time zone, between {EARLIEST.date()} and {LATEST.date()}."),
]
Int64 = Annotated[int, Field(ge=-SEQ_MAX - 1, le=SEQ_MAX)]

# Codes of agencies and purposes, as the registry creates them.
Code = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")]
# Names of fields, data categories and roles (policies/).
Word = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
FieldName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# Text without control characters (Line) or with tabs and line breaks only (Text); each use adds
# its own length limits.
Line = Annotated[str, Field(pattern=LINE)]
Text = Annotated[str, Field(pattern=TEXT)]
# A profile value as sent: the field catalogue checks it further (type, length, shape).
FieldText = Annotated[str, Field(max_length=100_000, pattern=TEXT)]
FieldInput = FieldText | Int64
