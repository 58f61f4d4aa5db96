"""Intake screening of free-text fields (catalogue ``free_text: true``) and the stored findings.

On every write of a free-text field the text is scanned (pattern recognizers, plus the citizen's
own profile values held in memory for the scan only). What the field's ``pii`` rule forbids decides
the write: refuse (ValidationFailed naming the entity types, never the values), redact (store the
text with ``[TYPE]`` in place of each forbidden entity) or accept. Entity types, counts, best scores
and the action taken are stored in ``pii_findings`` beside the ciphertext; never values, offsets or
the text.

Presidio is imported on first use (vault.pii.engine), not when the vault is imported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, select

from vault.catalogue import Catalogue, Value
from vault.errors import ValidationFailed
from vault.pii.model import Entity, redact, summarise
from vault.pii.prefilter import cannot_hold, values_cannot_hold
from vault.pii.tables import pii_findings

if TYPE_CHECKING:
    from vault.pii.engine import Detector

# Which profile fields are the citizen's own values, and as which entity type they are reported.
OWN_ENTITY = {
    "given_name": "PERSON",
    "family_name": "PERSON",
    "address": "LOCATION",
    "national_id": "NATIONAL_ID",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "date_of_birth": "DATE_OF_BIRTH",
}


@dataclass(frozen=True)
class FieldFindings:
    """The screening of one free-text value: what was found (types, counts, scores) and what was done."""

    field: str
    found: dict[str, dict[str, float | int]]
    forbidden: tuple[str, ...] = ()
    action: str = "none"  # none | accepted | redacted | refused

    def stored(self) -> str:
        """The JSON kept in pii_findings: types, counts, scores and the action; nothing else."""
        if not self.found and not self.forbidden and self.action == "none":
            return _NOTHING_FOUND  # most texts (bulk imports: one per profile)
        return json.dumps(
            {"entities": self.found, "forbidden": list(self.forbidden), "action": self.action}, separators=(",", ":")
        )


_NOTHING_FOUND = json.dumps({"entities": {}, "forbidden": [], "action": "none"}, separators=(",", ":"))
NOTHING_FOUND = _NOTHING_FOUND  # FieldFindings(field, {}).stored(): a text screened with no entity in it


def own_values(values: Mapping[str, Value | None]) -> list[tuple[str, str]]:
    """(entity type, value) pairs of the citizen's own identifying values, for one scan."""
    return [(OWN_ENTITY[n], str(v)) for n, v in values.items() if n in OWN_ENTITY and v is not None]


def _default_detector(model: str | None) -> Callable[[], Detector]:
    built: list[Detector] = []

    def build() -> Detector:
        if not built:  # the process-wide detector, looked up once (screening runs per imported profile)
            from vault.pii.engine import shared_detector  # noqa: PLC0415  (Presidio loads on first use)

            built.append(shared_detector(model))
        return built[0]

    return build


class Intake:
    """Screens free-text values on write and keeps the findings."""

    def __init__(
        self, catalogue: Catalogue, spacy_model: str | None = None, detector: Callable[[], Detector] | None = None
    ) -> None:
        self.catalogue = catalogue
        self.free_text = sorted(n for n, s in catalogue.fields.items() if s.free_text)
        self._detector = detector or _default_detector(spacy_model)
        # The default detector without a spaCy model has no NER: a text the pre-filter clears gets
        # no entity from it, so there is no need to load Presidio for it (bulk imports of notes).
        self._prefilter = detector is None and spacy_model is None

    def detector(self) -> Detector:
        """The process-wide detector (built on first use), for the scan API and redacted renderings."""
        return self._detector()

    def scanned(self, values: Mapping[str, Value | None]) -> list[str]:
        """Which of ``values`` are free-text fields (scanned on write)."""
        return [n for n in self.free_text if n in values]

    def cleared(self, values: Mapping[str, Value | None]) -> list[str] | None:
        """The fields :meth:`screen` (with the citizen's :func:`own_values`) would find nothing in,
        when the pre-filter clears every free-text value: then ``screen`` would return the values
        unchanged and, for each of these fields, in this order, an empty finding
        (:data:`NOTHING_FOUND`). None when some text needs the detector: call ``screen``. The bulk
        import's shortcut (no copy of the values, no finding objects)."""
        if not self._prefilter:
            return None
        names = [n for n in self.free_text if n in values]
        if not names:
            return names
        own: list[str] | None = None
        cleared = []
        for name in names:
            text = values[name]
            if not isinstance(text, str):
                continue  # screen skips it too (no finding)
            if text.strip():
                if own is None:
                    own = [str(v) for n, v in values.items() if n in OWN_ENTITY and v is not None]
                if not values_cannot_hold(text, own):
                    return None
            cleared.append(name)
        return cleared

    def screen(
        self, values: Mapping[str, Value | None], own: Iterable[tuple[str, str]] = ()
    ) -> tuple[dict[str, Value | None], dict[str, FieldFindings]]:
        """Scan the free-text values; returns the values to store (redacted where policy says) and findings.

        Raises ValidationFailed when a field's policy refuses an entity type found in it.
        """
        out = dict(values)
        findings: dict[str, FieldFindings] = {}
        problems: dict[str, str] = {}
        own_pairs = list(own)
        for name in self.scanned(values):
            text = values[name]
            if not isinstance(text, str):
                continue
            if self._prefilter and (not text.strip() or cannot_hold(text, own_pairs)):
                findings[name] = FieldFindings(name, {})  # no entity: what a full scan would find
                continue
            entities = self._detector().scan(text, own_pairs)
            rule = self.catalogue.fields[name].pii
            bad = tuple(sorted({e.type for e in entities} & set(rule.forbidden))) if entities else ()
            action = "none"
            if bad:
                if rule.action == "refuse":
                    problems[name] = f"contains {', '.join(bad)}; not allowed in this field"
                    continue
                if rule.action == "redact":
                    out[name] = redact(text, [e for e in entities if e.type in bad])
                action = "redacted" if rule.action == "redact" else "accepted"
            findings[name] = FieldFindings(name, summarise(entities), bad, action)
        if problems:
            raise ValidationFailed(problems)
        return out, findings

    def store(
        self,
        conn: Connection,
        citizen: uuid.UUID,
        values: Mapping[str, Value | None],
        findings: Mapping[str, FieldFindings],
        now: datetime,
    ) -> None:
        """Replace the findings of the free-text fields written (a removed field loses its findings)."""
        written = self.scanned(values)
        if not written:
            return
        conn.execute(
            delete(pii_findings).where(pii_findings.c.citizen_id == citizen, pii_findings.c.field.in_(written))
        )
        rows = [
            {"citizen_id": citizen, "field": f.field, "findings": f.stored(), "scanned_at": now}
            for f in findings.values()
        ]
        if rows:
            conn.execute(pii_findings.insert(), rows)

    def forget(self, conn: Connection, citizen: uuid.UUID) -> None:
        """Drop a citizen's findings (erasure): types and counts, but linked to the person."""
        conn.execute(delete(pii_findings).where(pii_findings.c.citizen_id == citizen))


def read_findings(engine: Engine, citizen: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The stored findings of one citizen, by field: {entities, forbidden, action, scanned_at}."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(pii_findings.c.field, pii_findings.c.findings, pii_findings.c.scanned_at)
            .where(pii_findings.c.citizen_id == citizen)
            .order_by(pii_findings.c.field)
        ).all()
    return {r.field: {**json.loads(r.findings), "scanned_at": r.scanned_at} for r in rows}


# The data category (field catalogue) each entity type belongs to: a free-text value shared with an
# agency is redacted of entities from categories its purpose may not use. Unknown types: identity.
ENTITY_CATEGORY = {
    "US_SSN": "identity",
    "UK_NINO": "identity",
    "UK_NHS": "identity",
    "SG_NRIC_FIN": "identity",
    "MY_NRIC": "identity",
    "IN_AADHAAR": "identity",
    "EE_PERSONAL_CODE": "identity",
    "NATIONAL_ID": "identity",
    "PERSON": "identity",
    "DATE_OF_BIRTH": "identity",
    "NRP": "identity",
    "EMAIL_ADDRESS": "contact",
    "PHONE_NUMBER": "contact",
    "LOCATION": "contact",
    "IBAN_CODE": "financial",
    "CREDIT_CARD": "financial",
    "DATE_TIME": "none",
    "ORGANIZATION": "none",
}


def redact_outside(
    text: str, detector: Detector, categories: Iterable[str], own: Iterable[tuple[str, str]] = ()
) -> str:
    """``text`` with entities of categories other than ``categories`` replaced by ``[TYPE]``: what an
    agency reading a free-text field through a grant receives."""
    allowed = {*categories, "none"}
    found = detector.scan(text, list(own))
    return redact(text, [e for e in found if ENTITY_CATEGORY.get(e.type, "identity") not in allowed])


def render_redacted(text: str, detector: Detector, own: Iterable[tuple[str, str]] = ()) -> str:
    """``text`` with every detected entity replaced by ``[TYPE]``: for exports and insights."""
    return redact(text, detector.scan(text, list(own)))


__all__ = [
    "ENTITY_CATEGORY",
    "OWN_ENTITY",
    "Entity",
    "FieldFindings",
    "Intake",
    "own_values",
    "read_findings",
    "redact_outside",
    "render_redacted",
]
