"""Demo representation (issue 17): a fictitious minor child of demo citizen 0, recorded by the
civil registry's registrar as their parent, and a view-only mandate from demo citizen 1 to demo
citizen 2, so that `make run` shows acting for someone. Idempotent: seeding twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault import demo
from vault.audit.log import Actor
from vault.profiles.service import ProfileService

if TYPE_CHECKING:
    from vault.runtime import Vault

REGISTRAR = Actor("registrar@civil-registry", "registrar", "civil-registry")
CHILD_KEY = "citizen-child"
CHILD_AGE = 9


def child_profile(today: datetime | None = None) -> dict[str, Any]:
    """The demo child: invented, always ``CHILD_AGE`` years old on the day the demo is seeded."""
    day = (today or datetime.now(UTC)).date()
    born = day.replace(year=day.year - CHILD_AGE, day=min(day.day, 28))
    return {
        "given_name": "Pip",
        "family_name": demo.profile(0)["family_name"],
        "date_of_birth": born.isoformat(),
        "national_id": "990-000-001",
        "email": "pip.demo-child@example.org",
    }


def _one(profiles: ProfileService, national_id: str) -> str | None:
    found = profiles.lookup("national_id", national_id)
    return str(found[0]) if len(found) == 1 else None


def seed(vault: Vault) -> None:
    """The demo child, its parent relation and a demo mandate, unless seeded already."""
    profiles, service = vault.profiles, vault.representation
    parent, giver, holder = (_one(profiles, demo.profile(i)["national_id"]) for i in range(3))
    if parent is None or giver is None or holder is None:
        return  # fewer than three demo citizens: nothing to relate
    child = _one(profiles, child_profile()["national_id"])
    if child is None:
        child = str(profiles.create(child_profile(), "civil-registry", actor=REGISTRAR))
    if not any(r.kind == "parent" and r.status == "active" for r in service.of(child)[0]):
        service.record(REGISTRAR, "parent", uuid.UUID(child), uuid.UUID(parent))
    if not any(r.kind == "mandate" and r.status == "active" for r in service.of(giver)[0]):
        holder_id = demo.profile(2)["national_id"]
        service.give_mandate(Actor(giver, "citizen", "-"), giver, holder_id, ["view"], None, None)


def people(profiles: ProfileService) -> list[tuple[str, str, str]]:
    """(key, display name, subject) of the demo child for the development sign-in page, if seeded."""
    p = child_profile()
    child = _one(profiles, p["national_id"])
    return [] if child is None else [(CHILD_KEY, f"{p['given_name']} {p['family_name']} (a child)", child)]
