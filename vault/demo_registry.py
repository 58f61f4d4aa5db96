"""The demo's agencies, officers and clients (all fictitious)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from vault.errors import Conflict
from vault.registry import OPERATOR_AGENCY, Registry

AGENCIES = {
    "civil-registry": "Civil Registry",
    "tax-office": "Tax Office",
    "benefits-office": "Benefits Office",
    "city-clinic": "City Clinic",
}
OFFICERS = [
    ("registrar@civil-registry", "civil-registry", "registrar"),
    ("caseworker@benefits-office", "benefits-office", "caseworker"),
    ("registrar@tax-office", "tax-office", "registrar"),
    ("compliance@vault", OPERATOR_AGENCY, "compliance-officer"),
    ("admin@vault", OPERATOR_AGENCY, "admin"),
]


@dataclass(frozen=True)
class DemoClient:
    """A demo API client; ``secret`` only when it was created by this run."""

    client_id: str
    agency: str
    secret: str | None


def seed_registry(registry: Registry) -> list[DemoClient]:
    """Agencies, officers' roles and one client per agency (idempotent)."""
    for code, name in AGENCIES.items():
        with contextlib.suppress(Conflict):
            registry.create_agency(code, name)
    for subject, agency, role in OFFICERS:
        registry.assign(subject, agency, role)
    out = []
    for code in ("tax-office", "benefits-office", "city-clinic"):
        existing = registry.clients(code)
        if existing:
            out.append(DemoClient(existing[0].client_id, code, None))
        else:
            client, secret = registry.create_client(code, f"{AGENCIES[code]} application")
            out.append(DemoClient(client.client_id, code, secret))
    return out
