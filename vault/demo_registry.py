"""The demo's agencies, officers and clients (all fictitious)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from vault import demo
from vault.errors import Conflict
from vault.profiles.service import ProfileService
from vault.purposes.service import PurposeService
from vault.registry import OPERATOR, OPERATOR_AGENCY, Registry
from vault.representation import demo as representation_demo

AGENCIES = {
    "civil-registry": "Civil Registry",
    "tax-office": "Tax Office",
    "benefits-office": "Benefits Office",
    "city-clinic": "City Clinic",
    "public-works": "Public Works",
}
OFFICERS = [
    ("registrar@civil-registry", "civil-registry", "registrar"),
    ("caseworker@benefits-office", "benefits-office", "caseworker"),
    ("caseworker@city-clinic", "city-clinic", "caseworker"),
    ("caseworker@tax-office", "tax-office", "caseworker"),
    ("caseworker@public-works", "public-works", "caseworker"),
    ("registrar@tax-office", "tax-office", "registrar"),
    ("compliance@vault", OPERATOR_AGENCY, "compliance-officer"),
    ("admin@vault", OPERATOR_AGENCY, "admin"),
    ("analyst@vault", OPERATOR_AGENCY, "analyst"),  # insights (docs/insights.md)
]


DEMO_SECRET_DAYS = 30  # demo secrets are printed on a terminal: they expire sooner than real ones


@dataclass(frozen=True)
class DemoClient:
    """A demo API client; ``secret`` only when it was created by this run."""

    client_id: str
    agency: str
    secret: str | None


# (code, description, categories, lawful basis, statute, retention days, agencies): fictitious statutes.
PURPOSES = [
    (
        "tax-assessment",
        "Assess income tax owed",
        ["identity", "financial"],
        "legal-obligation",
        "Income Tax Act (fictitious) s. 42: the tax office assesses declared income",
        3650,
        ["tax-office"],
    ),
    (
        "benefit-eligibility",
        "Decide eligibility for housing and income benefits",
        ["identity", "contact", "financial"],
        "consent",
        None,
        730,
        ["benefits-office"],
    ),
    (
        "emergency-care",
        "Treat a patient in an emergency",
        ["identity", "health"],
        "vital-interest",
        "Public Health Act (fictitious) s. 7: data needed to protect the life of the data subject",
        3650,
        ["city-clinic"],
    ),
]


def seed_purposes(purposes: PurposeService) -> None:
    """The three demo purposes, one per lawful basis family (idempotent)."""
    for code, description, categories, basis, statute, retention, agencies in PURPOSES:
        with contextlib.suppress(Conflict):
            purposes.create(code, description, categories, basis, statute, retention, agencies, actor=OPERATOR)


def seed_registry(registry: Registry) -> list[DemoClient]:
    """Agencies, officers' roles and one client per agency (idempotent).

    Seeding is the operator's action (audited as ``operator``): its clients are active at once, as
    the operator's are (docs/registry.md). Their secrets live DEMO_SECRET_DAYS, shorter than a real
    client's; a demo client whose secret has expired is given a new one (shown once) by the next run.
    """
    for code, name in AGENCIES.items():
        with contextlib.suppress(Conflict):
            registry.create_agency(code, name, actor=OPERATOR)
    for subject, agency, role in OFFICERS:
        registry.assign(subject, agency, role, actor=OPERATOR)
    out = []
    for code in ("tax-office", "benefits-office", "city-clinic"):
        existing = [c for c in registry.clients(code) if c.status == "active"]
        if not existing:
            client, secret = registry.create_client(
                code, f"{AGENCIES[code]} application", actor=OPERATOR, secret_days=DEMO_SECRET_DAYS
            )
            out.append(DemoClient(client.client_id, code, secret))
        elif registry.client_refusal(existing[0].client_id) == "secret-expired":
            client, secret = registry.rotate_secret(existing[0].client_id, actor=OPERATOR, secret_days=DEMO_SECRET_DAYS)
            out.append(DemoClient(client.client_id, code, secret))
        else:
            out.append(DemoClient(existing[0].client_id, code, None))
    return out


DEMO_CITIZENS = 3  # the first demo profiles offered on the development sign-in page
ROLE_NAMES = {
    "citizen": "Citizen",
    "registrar": "Registrar",
    "caseworker": "Caseworker",
    "compliance-officer": "Compliance officer",
    "admin": "Administrator",
    "analyst": "Analyst",
}


@dataclass(frozen=True)
class DemoPerson:
    """Someone the development sign-in page offers: ``key`` names them in its form."""

    key: str
    display_name: str
    role: str
    agency: str
    subject: str


def demo_people(profiles: ProfileService) -> list[DemoPerson]:
    """The demo citizens that were imported (found by their fictitious national id, an audited
    lookup by the operator) and the demo officers, by display name."""
    people = []
    for i in range(DEMO_CITIZENS):
        p = demo.profile(i)
        found = profiles.lookup("national_id", p["national_id"])
        if found:
            name = f"{p['given_name']} {p['family_name']}"
            people.append(DemoPerson(f"citizen-{i}", name, "citizen", "-", str(found[0])))
    people += [DemoPerson(k, n, "citizen", "-", s) for k, n, s in representation_demo.people(profiles)]
    for subject, agency, role in OFFICERS:
        name = f"{ROLE_NAMES.get(role, role)}, {AGENCIES.get(agency, 'Vault operator')}"
        people.append(DemoPerson(subject, name, role, agency, subject))
    return people
