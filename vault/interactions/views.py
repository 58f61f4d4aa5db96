"""An interaction as its reader may see it, opened from its row and history.

The full view (the citizen, the receiving agency) carries every sealed value; the public view (an
open 311 feed) carries the redacted text only, no contact, no attachment, no citizen and no place
that identifies a home. When the key is gone (the citizen was erased) every sealed value is None.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from vault.interactions import model as m
from vault.interactions.queries import at, summary
from vault.interactions.sealing import Sealer

_TIMES = (
    ("open", "created_s"),
    ("acknowledged", "acknowledged_s"),
    ("in_progress", "in_progress_s"),
    ("resolved", "resolved_s"),
    ("closed", "closed_s"),
)


def build(
    row: Any,
    history: Sequence[Any],
    sealer: Sealer,
    owner: uuid.UUID,
    key: bytes | None,
    public: bool,
    now_s: int,
) -> m.Interaction:
    """The view of one item."""
    values = sealer.open(owner, key, row.id, row.sealed) or {}
    location = _location(values.get("location"), row.home, public)
    entries = [_entry(sealer, owner, key, row.id, h, public) for h in history]
    rating_comment = next((e.note for e in reversed(entries) if e.kind == "rating"), None)
    attributes: dict[str, str | list[str]] = json.loads(values["attributes"]) if "attributes" in values else {}
    contact = m.Contact(**json.loads(values["contact"])) if "contact" in values and not public else None
    return m.Interaction(
        summary=summary(row, now_s),
        citizen_id=None if public else row.citizen_id,
        status_times={name: at(getattr(row, column)) for name, column in _TIMES if getattr(row, column) is not None},
        home=bool(row.home),
        text=None if public else values.get("text"),
        redacted_text=values.get("redacted"),
        pii_found=json.loads(row.pii_found),
        attributes=attributes,
        location=location,
        contact=contact,
        attachment=None if public else values.get("attachment"),
        rating_comment=None if public else rating_comment,
        history=entries,
        readable=key is not None,
    )


def _location(raw: str | None, home: bool, public: bool) -> m.Location | None:
    if raw is None or (public and home):
        return None
    place = json.loads(raw)
    return m.Location(place.get("address"), place.get("lat"), place.get("lon"))


def _entry(sealer: Sealer, owner: uuid.UUID, key: bytes | None, iid: str, h: Any, public: bool) -> m.HistoryEntry:
    note = None
    if h.note is not None:
        opened = sealer.open(owner, key, f"{iid}/note", h.note) or {}
        note = opened.get("redacted" if public else "note")
    return m.HistoryEntry(h.at, h.kind, h.status, h.unit, h.by_role, h.by_agency, note)
