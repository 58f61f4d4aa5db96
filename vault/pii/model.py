"""What a PII scan returns, and what may be done with it, without Presidio (cheap to import)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Every entity type a scan can report: the pattern recognizers, the citizen's own values
# (NATIONAL_ID, PERSON, LOCATION ...) and, with a spaCy model configured, its NER labels as Presidio
# maps them. A catalogue ``pii.forbidden`` list may name only these (a typo would never match).
# Identifiers with a fixed structure (most with a checksum): what recall targets speak about.
STRUCTURED = (
    "US_SSN",
    "UK_NINO",
    "UK_NHS",
    "SG_NRIC_FIN",
    "MY_NRIC",
    "IN_AADHAAR",
    "EE_PERSONAL_CODE",
    "IBAN_CODE",
    "CREDIT_CARD",
)
ENTITY_TYPES = frozenset(
    {
        *STRUCTURED,
        "PHONE_NUMBER",
        "EMAIL_ADDRESS",
        "DATE_TIME",
        "DATE_OF_BIRTH",
        "NATIONAL_ID",
        "PERSON",
        "LOCATION",
        "NRP",
        "ORGANIZATION",
    }
)


@dataclass(frozen=True)
class Entity:
    """One detection: the entity type, character offsets [start, end) and a score in [0, 1]."""

    type: str
    start: int
    end: int
    score: float


def redact(text: str, entities: Iterable[Entity]) -> str:
    """``text`` with every entity replaced by ``[TYPE]``; an entity overlapping the one before extends its tag."""
    parts: list[str] = []
    pos = 0
    for e in sorted(entities, key=lambda e: (e.start, -e.end)):
        if e.start < pos:  # overlaps the previous entity: extend its tag over this one
            pos = max(pos, e.end)
            continue
        parts.append(text[pos : e.start])
        parts.append(f"[{e.type}]")
        pos = e.end
    parts.append(text[pos:])
    return "".join(parts)


def summarise(entities: Iterable[Entity]) -> dict[str, dict[str, float | int]]:
    """Entity types with their count and best score: all that may be stored (never values or offsets)."""
    out: dict[str, dict[str, float | int]] = {}
    for e in entities:
        s = out.setdefault(e.type, {"count": 0, "max_score": 0.0})
        s["count"] = int(s["count"]) + 1
        s["max_score"] = max(float(s["max_score"]), e.score)
    return dict(sorted(out.items()))
