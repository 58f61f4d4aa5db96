"""GeoReport v2 to and from the interaction service's model: the Open311 form in, the public views out.

Only shapes are translated here; which services and items are public is vault.open311feed's rule,
and everything an item holds is the interaction service's. Bad input becomes an ApiProblem with a
``reason``, answered in Open311's error list by api/open311_render.py.

What the public request view leaves out, always: the reporter's name, email, phone, account and
device id (never even stored: see :func:`new_interaction`), the description's unredacted text,
the address as typed, the address id, the attribute answers and the media URL (either may name or
show a person or a home). Coordinates are published only when the item's place is not a home, and
then rounded to ``PUBLIC_DECIMALS`` decimals (about 110 m north-south: the block, not the door);
otherwise the coarse area's name stands for the place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from api.errors import ApiProblem
from vault.interactions import model as m
from vault.interactions.catalogue import Service, ServiceCatalogue
from vault.interactions.errors import InteractionError, TransitionRefused

PUBLIC_DECIMALS = 3
MAX_FIELDS = 120  # form fields in one creation request (50 attributes, a few values each, the standard ones)
SINGLE = (
    "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
    "email", "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url",
)  # fmt: skip
_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tabs and line breaks are allowed
_MEDIA = re.compile(r"https?://[^\s]{1,2040}")
STATE_WORDS = {
    "open": "Received, not yet acknowledged",
    "acknowledged": "Acknowledged by the agency",
    "in_progress": "In progress",
    "resolved": "Resolved",
    "closed": "Closed",
}
DATATYPE_WORDS = {
    "string": "a short text",
    "number": "a number",
    "datetime": "a date and time (ISO 8601)",
    "text": "a text",
    "singlevaluelist": "one of the listed keys",
    "multivaluelist": "one or more of the listed keys, as attribute[code][]=key",
}


def bad(reason: str, detail: str, status: int = 400) -> ApiProblem:
    """An Open311 refusal (rendered as GeoReport's error list; the reason is audited for 401/403/429)."""
    return ApiProblem(status, reason, "Bad request" if status == 400 else "Refused", detail, reason=reason)


# -- in ------------------------------------------------------------------------------------------
def parse_form(body: bytes) -> tuple[dict[str, str], dict[str, str | list[str]]]:
    """The standard fields (each at most once) and the ``attribute[...]`` answers of a form body."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise bad("malformed-form", "the form is not UTF-8") from None
    except ValueError:
        raise bad("malformed-form", f"at most {MAX_FIELDS} form fields") from None
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if _CONTROL.search(value):
            raise bad("malformed-form", f"{_shown(name)}: control characters are not allowed")
        attribute = _ATTRIBUTE.fullmatch(name)
        if attribute is not None:
            code, many = attribute.group(1), attribute.group(2) is not None
            earlier = attributes.get(code)
            if many:
                attributes[code] = [*(earlier if isinstance(earlier, list) else []), value]
            elif earlier is not None:
                raise bad("malformed-form", f"attribute[{_shown(code)}] given twice")
            else:
                attributes[code] = value
        elif name in SINGLE:
            if name in fields:
                raise bad("malformed-form", f"{name} given twice")
            fields[name] = value
        # any other field is ignored, as GeoReport servers do with extensions they do not know
    return fields, attributes


def _shown(name: str) -> str:
    """A field name fit to repeat in an error (the caller's own text: letters, digits, _ and - only)."""
    return name if re.fullmatch(r"[A-Za-z0-9_\-\[\]]{1,80}", name) else "a field"


def _coordinate(fields: Mapping[str, str], name: str, limit: float) -> float | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise bad("invalid-location", f"{name} must be a number from -{limit:g} to {limit:g}")
    return value


def new_interaction(
    fields: Mapping[str, str], attributes: Mapping[str, str | list[str]], citizen_id: str | None
) -> m.NewInteraction:
    """The interaction a GeoReport creation form describes. ``device_id`` and ``account_id`` are
    dropped (the vault does not track devices, and an app's account id proves nothing); the name,
    email and phone are kept only as the item's sealed contact, never linking it to a profile."""
    code = fields.get("service_code", "").strip()
    if not code:
        raise bad("missing-service-code", "service_code is required")
    lat, lon = _coordinate(fields, "lat", 90), _coordinate(fields, "long", 180)
    if (lat is None) != (lon is None):
        raise bad("invalid-location", "give both lat and long, or neither")
    address = fields.get("address_string", "").strip() or fields.get("address_id", "").strip() or None
    if lat is None and address is None:
        raise bad("location-required", "give lat and long, address_string or address_id")
    media = fields.get("media_url", "").strip() or None
    if media is not None and not _MEDIA.fullmatch(media):
        raise bad("invalid-media-url", f"media_url must be an http(s) URL of at most {m.MAX_REFERENCE} characters")
    name = " ".join(p for p in (fields.get("first_name", "").strip(), fields.get("last_name", "").strip()) if p)
    contact = m.Contact(name or None, fields.get("email", "").strip() or None, fields.get("phone", "").strip() or None)
    return m.NewInteraction(
        service_code=code,
        text=fields.get("description", ""),
        kind="request",
        channel="app",
        citizen_id=citizen_id,
        attributes=_answered(attributes),
        location=m.Location(address, lat, lon),
        contact=contact if (contact.name or contact.email or contact.phone) else None,
        attachment=media,
        source="open311",
    )


def _answered(attributes: Mapping[str, str | list[str]]) -> dict[str, str | list[str]]:
    """The answers given: forms send every question, the unanswered ones empty (an empty answer is none)."""
    answered: dict[str, str | list[str]] = {}
    for code, value in attributes.items():
        if isinstance(value, list):
            if chosen := [v for v in value if v.strip()]:
                answered[code] = chosen
        elif value.strip():
            answered[code] = value
    return answered


# Names the interaction service gives problems, as a GeoReport client calls them.
_FIELD_NAMES = {
    "text": "description",
    "location": "lat/long",
    "location.address": "address_string",
    "attachment": "media_url",
    "contact.name": "first_name/last_name",
    "contact.email": "email",
    "contact.phone": "phone",
    "service_code": "service_code",
}


def open311_field(name: str) -> str:
    """A problem's field as GeoReport names it (``attributes.size`` -> ``attribute[size]``)."""
    if name.startswith("attributes."):
        return f"attribute[{name.removeprefix('attributes.')}]"
    return _FIELD_NAMES.get(name, name)


def refused_input(exc: InteractionError) -> ApiProblem:
    """The interaction service's refusal of the input, with each field named as GeoReport names it."""
    where = "; ".join(f"{open311_field(k)}: {v}" for k, v in sorted(exc.problems.items()))
    message = str(exc).removeprefix(f"{exc.reason}: ")
    return bad(
        exc.reason, f"{message} ({where})" if where else message, 409 if isinstance(exc, TransitionRefused) else 400
    )


# -- out -----------------------------------------------------------------------------------------
def when(moment: datetime | None) -> str | None:
    """A W3C date-time in UTC, to the second, as GeoReport v2 writes them."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def service_view(service: Service) -> dict[str, Any]:
    """One entry of ``services.json``."""
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description or None,
        "metadata": bool(service.attributes),
        "type": "realtime",
        "keywords": ",".join(service.keywords) or None,
        "group": service.group,
    }


def definition_view(service: Service) -> dict[str, Any]:
    """``services/{code}.json``: the service's questions in GeoReport's service-definition shape."""
    return {
        "service_code": service.code,
        "attributes": [
            {
                "variable": True,
                "code": a.code,
                "datatype": a.datatype,
                "required": a.required,
                "datatype_description": DATATYPE_WORDS[a.datatype],
                "order": a.order,
                "description": a.description,
                "values": [{"key": v.key, "name": v.name} for v in a.values],
            }
            for a in sorted(service.attributes, key=lambda a: (a.order, a.code))
        ],
    }


def _staff_note(entry: m.HistoryEntry) -> bool:
    """A note the receiving agency wrote on a change (published redacted); never a citizen's note or
    rating comment, which are theirs."""
    return entry.kind in ("status", "note", "assign") and entry.by_role != "citizen"


def request_view(item: m.Interaction, catalogue: ServiceCatalogue) -> dict[str, Any]:
    """One public service request (see the module docstring for what is never in it)."""
    s = item.summary
    service = catalogue.services.get(s.service_code)
    closed = s.status in ("resolved", "closed")
    words = STATE_WORDS.get(s.status, s.status)
    note = next((h.note for h in reversed(item.history) if h.note and _staff_note(h)), None)
    point = item.location if item.location is not None and not item.home else None
    lat = round(point.lat, PUBLIC_DECIMALS) if point is not None and point.lat is not None else None
    lon = round(point.lon, PUBLIC_DECIMALS) if point is not None and point.lon is not None else None
    area = next((a.name for a in catalogue.areas if a.code == s.area), None)
    return {
        "service_request_id": s.id,
        "status": "closed" if closed else "open",
        "status_notes": f"{words}. {note}" if note else words,
        "status_description": words,  # the vault's finer state (a GeoReport extension)
        "service_name": service.name if service is not None else None,
        "service_code": s.service_code,
        "description": item.redacted_text,
        "agency_responsible": s.agency,
        "service_notice": None,
        "requested_datetime": when(s.created_at),
        "updated_datetime": when(s.updated_at),
        "expected_datetime": None if closed else when(s.resolve_due),
        "address": area,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": None,
    }
