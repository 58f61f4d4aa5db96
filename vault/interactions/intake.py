"""Checking a new interaction against the catalogue, and screening its text for personal data.

Every problem is collected and reported at once (reason of the first kind found), before any key
is made or any row written: bad input leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from vault.interactions import model as m
from vault.interactions.catalogue import MAX_ATTRIBUTE_CHARS, Service, ServiceCatalogue
from vault.interactions.errors import InteractionInvalid
from vault.pii.model import redact, summarise
from vault.pii.prefilter import cannot_hold

if TYPE_CHECKING:
    from vault.pii.engine import Detector


def _bounded(problems: dict[str, str], name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        problems[name] = f"at most {limit} characters"


def check(catalogue: ServiceCatalogue, new: m.NewInteraction) -> tuple[Service, str | None]:
    """The service and the coarse area of a valid interaction; InteractionInvalid otherwise."""
    service = catalogue.services.get(new.service_code)
    if service is None:
        raise InteractionInvalid("unknown-service", "no such service", {"service_code": "not in the catalogue"})
    oversize: dict[str, str] = {}
    _bounded(oversize, "text", new.text, m.MAX_TEXT)
    _bounded(oversize, "attachment", new.attachment, m.MAX_REFERENCE)
    if oversize:
        reason = "attachment-too-long" if "text" not in oversize else "text-too-long"
        raise InteractionInvalid(reason, "too long", oversize)
    problems: dict[str, str] = {}
    if not new.text.strip():
        problems["text"] = "describe the request"
    if new.kind not in m.KINDS:
        problems["kind"] = f"one of {', '.join(m.KINDS)}"
    if new.channel not in m.CHANNELS:
        problems["channel"] = f"one of {', '.join(m.CHANNELS)}"
    if new.contact is not None:
        for name in ("name", "email", "phone"):
            _bounded(problems, f"contact.{name}", getattr(new.contact, name), m.MAX_CONTACT)
    area = _area(catalogue, service, new, problems)
    if problems:
        raise InteractionInvalid("invalid-interaction", "the interaction is not valid", problems)
    _check_attributes(service, new)
    return service, area


def _area(catalogue: ServiceCatalogue, service: Service, new: m.NewInteraction, problems: dict[str, str]) -> str | None:
    loc = new.location
    has_place = loc is not None and (loc.address is not None or loc.lat is not None or loc.lon is not None)
    if service.location == "required" and not has_place and new.area is None:
        problems["location"] = "this service needs an address or a point"
    if loc is not None:
        _bounded(problems, "location.address", loc.address, m.MAX_ADDRESS)
        if (loc.lat is None) != (loc.lon is None):
            problems["location"] = "give both lat and lon"
        elif loc.lat is not None and loc.lon is not None:
            if not (-90 <= loc.lat <= 90 and -180 <= loc.lon <= 180):
                problems["location"] = "lat -90..90, lon -180..180"
            else:
                return catalogue.area_of(loc.lat, loc.lon)
    if new.area is not None and new.area not in catalogue.area_codes():
        problems["area"] = "not a known area"
    return new.area


def _check_attributes(service: Service, new: m.NewInteraction) -> None:
    known = {a.code: a for a in service.attributes}
    problems: dict[str, str] = {}
    if len(new.attributes) > m.MAX_ATTRIBUTES:
        raise InteractionInvalid("invalid-attribute", "too many answers", {"attributes": f"at most {m.MAX_ATTRIBUTES}"})
    for code, value in new.attributes.items():
        spec = known.get(code)
        if spec is None:
            problems["attributes.*"] = "not a question of this service"
        elif (why := spec.check(value)) is not None:
            problems[f"attributes.{code}"] = why
    if problems:
        raise InteractionInvalid("invalid-attribute", "an answer is not valid", problems)
    missing = [a.code for a in service.attributes if a.required and not new.attributes.get(a.code)]
    if missing:
        raise InteractionInvalid(
            "missing-attributes",
            "required questions are unanswered",
            dict.fromkeys((f"attributes.{c}" for c in missing), "required"),
        )


def screen(text: str, detector: Callable[[], Detector]) -> tuple[str, dict[str, int]]:
    """The redacted copy of ``text`` (every entity found replaced by ``[TYPE]``) and the entity
    types found with their counts; a text the pre-filter clears needs no detector."""
    if cannot_hold(text, []):
        return text, {}
    entities = detector().scan(text)
    counts = {t: int(s["count"]) for t, s in summarise(entities).items()}
    return redact(text, entities), counts


def sealed_values(new: m.NewInteraction, redacted: str) -> dict[str, str]:
    """The values an interaction seals (name -> text); absent ones are left out."""
    values = {"text": new.text, "redacted": redacted}
    if new.attributes:
        values["attributes"] = json.dumps(dict(new.attributes), separators=(",", ":"))
    if new.attachment:
        values["attachment"] = new.attachment
    if new.contact is not None:
        contact = {k: v for k, v in vars(new.contact).items() if v}
        if contact:
            values["contact"] = json.dumps(contact, separators=(",", ":"))
    loc = new.location
    if loc is not None and (loc.address or loc.lat is not None):
        values["location"] = json.dumps({"address": loc.address, "lat": loc.lat, "lon": loc.lon})
    return values


__all__ = ["MAX_ATTRIBUTE_CHARS", "check", "screen", "sealed_values"]
