"""What the portal's and the console's interaction pages share: service choices, questions as form
fields, plain-word reasons, and the detail page's rows. No business rule: the service decides."""

from __future__ import annotations

from typing import Any

from vault.interactions.catalogue import Service, ServiceCatalogue
from vault.interactions.errors import InteractionError
from vault.interactions.model import NEXT, Interaction

STATUS_WORDS = {
    "open": "Received",
    "acknowledged": "Acknowledged",
    "in_progress": "In progress",
    "resolved": "Resolved",
    "closed": "Closed",
}
ACTION_WORDS = {"acknowledged": "Acknowledge", "in_progress": "Start work", "resolved": "Resolve", "closed": "Close"}
REASONS = {
    "unknown-service": "Choose a service from the list",
    "missing-attributes": "Answer the questions marked as required",
    "invalid-attribute": "An answer is not one of the choices offered",
    "text-too-long": "Shorten the text to at most 4,000 characters",
    "attachment-too-long": "Shorten the attachment reference to at most 2,048 characters",
    "invalid-transition": "The request has moved on since you opened it: look at its current status",
    "not-resolved": "You can rate a request once it is resolved",
    "already-rated": "You have rated this request already",
    "invalid-rating": "Choose a rating from 1 to 5",
    "unknown-unit": "Choose one of your agency's units",
    "closed": "The request is closed",
    "invalid-note": "Write a note",
}


def service_options(catalogue: ServiceCatalogue, agency: str | None = None) -> list[tuple[str, str]]:
    """(code, "Group: name") of every service (or an agency's), for a drop-down."""
    services = catalogue.of_agency(agency) if agency else list(catalogue.services.values())
    return [("", "Choose a service")] + [(s.code, f"{s.group}: {s.name}") for s in services]


def questions(service: Service | None) -> list[dict[str, Any]]:
    """The service's extra questions as form fields (name ``attr_<code>``)."""
    if service is None:
        return []
    return [
        {
            "name": f"attr_{a.code}",
            "code": a.code,
            "label": a.description + ("" if a.required else " (optional)"),
            "options": [("", "Choose")] + [(v.key, v.name) for v in a.values] if a.values else None,
        }
        for a in sorted(service.attributes, key=lambda a: a.order)
    ]


def answers(service: Service | None, form: Any) -> dict[str, str | list[str]]:
    """The questions answered in ``form`` (blank ones left out)."""
    if service is None:
        return {}
    return {a.code: form.get(f"attr_{a.code}") for a in service.attributes if form.get(f"attr_{a.code}")}


def errors_of(exc: InteractionError) -> dict[str, str]:
    """Form errors (field id -> plain sentence) from a refusal of the service."""
    sentence = REASONS.get(exc.reason, "The request was not accepted")
    out: dict[str, str] = {}
    for where in exc.problems or {"form": ""}:
        if where.startswith("attributes."):
            field = "attr_" + where.split(".", 1)[1] if where != "attributes.*" else "service_code"
        else:
            field = {"location": "address", "location.address": "address", "attachment": "text"}.get(where, where)
        out[field] = sentence if exc.reason != "invalid-interaction" else f"{sentence}: {exc.problems[where]}"
    return out


def detail_rows(item: Interaction, catalogue: ServiceCatalogue) -> list[dict[str, str]]:
    """The summary list of one item."""
    s = item.summary
    service = catalogue.services.get(s.service_code)
    rows = [
        {"key": "Service", "value": service.name if service else s.service_code},
        {"key": "Kind", "value": s.kind},
        {"key": "Status", "value": STATUS_WORDS.get(s.status, s.status)},
        {"key": "Received", "value": s.created_at.strftime("%Y-%m-%d %H:%M UTC")},
        {"key": "Acknowledge by", "value": s.ack_due.strftime("%Y-%m-%d %H:%M UTC")},
        {"key": "Resolve by", "value": s.resolve_due.strftime("%Y-%m-%d %H:%M UTC")},
        {"key": "Area", "value": s.area or "none"},
        {"key": "Unit", "value": s.unit or "not assigned"},
    ]
    if item.location is not None and item.location.address:
        rows.append({"key": "Address", "value": item.location.address})
    for code, value in item.attributes.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        rows.append({"key": code.replace("_", " ").capitalize(), "value": shown})
    if s.rating is not None:
        rows.append({"key": "Rating", "value": f"{s.rating} of 5"})
    return rows


def next_statuses(status: str) -> list[tuple[str, str]]:
    """The moves open to an item, as (status, button words)."""
    return [(n, ACTION_WORDS[n]) for n in NEXT.get(status, ())]


def history_rows(item: Interaction, citizen: bool) -> list[list[str]]:
    """The item's history as table rows: when, what happened, the note."""
    rows = []
    for h in item.history:
        what = {
            "created": "Received",
            "status": STATUS_WORDS.get(h.status or "", h.status or ""),
            "assign": f"Assigned to {h.unit}",
            "rating": "You rated it" if citizen else "Rated by the citizen",
            "note": "Note",
        }.get(h.kind, h.kind)
        rows.append([h.at[:16].replace("T", " ") + " UTC", what, h.note or ""])
    return rows
