"""A realistic few thousand demo interactions over several months (issue 15), so the pages, the
Open311 feed and the insights have something to show. Every text is invented and holds no
personal data; the demo citizens (vault.demo_registry) own a few, the rest are anonymous.

Seeding writes the rows in bulk rather than through InteractionService.create one by one (that
would cost a transaction and an audit append each): the same rows, sealed the same way (one key
per anonymous item, the citizen's interactions key for theirs), with their history and facts rows,
and one audit event naming the seeding, all in one transaction. Idempotent: a store that holds
interactions already is left alone. Deterministic: a fixed random seed.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from keys.dekstore import DekRef
from keys.sqlstore import bulk_insert, writing
from vault.audit.log import Event, iso
from vault.demo_registry import demo_people
from vault.fieldcipher import SLOT_INTERACTION
from vault.interactions.catalogue import Area, Service
from vault.interactions.facts import interaction_facts
from vault.interactions.sealing import VERSION, Sealer
from vault.interactions.tables import interaction_events, interactions
from vault.registry import OPERATOR
from vault.runtime import Vault

DEFAULT_COUNT = 3000
DAYS = 180
TEXTS = {
    "pothole": ["Deep hole in the road near the bus stop.", "Cracked surface on the cycle path, dangerous at night."],
    "streetlight": ["The street light has been out for a week.", "Lamp flickers all night long."],
    "missed-collection": ["Our bin was not emptied this morning.", "Recycling left behind again."],
    "graffiti": ["Fresh graffiti on the underpass wall.", "Tags sprayed on the playground fence."],
    "park-maintenance": ["A fallen branch blocks the path.", "The swing in the playground is broken."],
    "housing-repair": ["The heating does not work.", "Damp patch spreading on the bedroom wall."],
    "benefit-enquiry": ["When will the housing allowance be paid?", "Am I still eligible after moving?"],
    "clinic-appointment": ["My appointment was cancelled without notice.", "Cannot book a slot online."],
    "tax-question": ["The bill seems to count income twice.", "How do I pay in instalments?"],
    "service-feedback": ["Thank you for the quick repair in our street.", "The new website is hard to use."],
}
NOTES = {"acknowledged": "We have received your report.", "in_progress": "A crew is scheduled.", "resolved": "Done."}
# Services, channels and areas are not equally busy: weights make the statistics look like a city's.
CHANNEL_WEIGHTS = {"web": 40, "app": 25, "phone": 20, "email": 10, "counter": 5}
KIND_OF = {"service-feedback": "feedback", "benefit-enquiry": "enquiry", "tax-question": "enquiry"}


def seed_interactions(vault: Vault, count: int = DEFAULT_COUNT, now: datetime | None = None) -> int:
    """Seed ``count`` interactions unless the store has some already; returns how many were added."""
    service = vault.interactions
    with vault.data_engine.connect() as conn:
        if conn.execute(interactions.select().limit(1)).first() is not None:
            return 0
    rng = random.Random(15)  # noqa: S311 - invented demo data, reproducible on purpose
    now = now or datetime.now(UTC)
    citizens = [p.subject for p in demo_people(vault.profiles) if p.role == "citizen"]
    catalogue = service.catalogue
    services = list(catalogue.services.values())
    weights = [6 if s.group == "Streets" else 3 if s.group == "Waste" else 1 for s in services]
    plans = [_plan(rng, rng.choices(services, weights)[0], list(catalogue.areas), citizens, now) for _ in range(count)]
    sealer = Sealer(vault.dekstore)
    keys = {uuid.UUID(c): sealer.key_or_create(uuid.UUID(c)) for c in citizens}
    anonymous = [
        DekRef(uuid.UUID(p["row"]["id"]), SLOT_INTERACTION, VERSION) for p in plans if not p["row"]["citizen_id"]
    ]
    keys |= {ref.owner: key for ref, key in vault.dekstore.create(anonymous).items()}
    rows, events, facts = [], [], []
    for plan in plans:
        row = plan["row"]
        owner = uuid.UUID(row["citizen_id"] or row["id"])
        row["sealed"] = Sealer.seal(owner, keys[owner], row["id"], plan["values"])
        rows.append(row)
        facts.append(plan["fact"])
        for seq, (at, kind, status, note) in enumerate(plan["history"], start=1):
            sealed = (
                Sealer.seal(owner, keys[owner], f"{row['id']}/note", {"note": note, "redacted": note}) if note else None
            )
            events.append(_event(row["id"], seq, at, kind, status, row["agency"], sealed))
    with writing(vault.data_engine) as conn:
        bulk_insert(conn, interactions, rows)
        bulk_insert(conn, interaction_events, events)
        bulk_insert(conn, interaction_facts, facts)
        vault.audit.append(conn, OPERATOR, [Event("interactions.seed-demo")])
    return count


def _event(iid: str, seq: int, at: int, kind: str, status: str, agency: str, note: bytes | None) -> dict[str, Any]:
    by = ("citizen", "-") if kind == "created" else ("caseworker", agency)
    return {
        "id": str(uuid.uuid4()),
        "interaction_id": iid,
        "seq": seq,
        "at": iso(datetime.fromtimestamp(at, UTC)),
        "kind": kind,
        "status": status,
        "unit": None,
        "by_role": by[0],
        "by_agency": by[1],
        "note": note,
    }


def _plan(rng: random.Random, s: Service, areas: list[Area], citizens: list[str], now: datetime) -> dict[str, Any]:
    created = now - timedelta(days=DAYS * rng.random() ** 0.8)  # busier lately
    created_s = int(created.timestamp())
    area = rng.choice(areas)
    south, west, north, east = area.box
    lat, lon = rng.uniform(south, north), rng.uniform(west, east)
    iid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    # How far it got, and how fast: most meet their targets, some do not.
    age = int(now.timestamp()) - created_s
    times: dict[str, int] = {"open": created_s}
    at = created_s
    history: list[tuple[int, str, str, str | None]] = [(created_s, "created", "open", None)]
    status = "open"
    for nxt, target in (
        ("acknowledged", s.ack_target_s),
        ("in_progress", s.ack_target_s),
        ("resolved", s.resolve_target_s),
    ):
        step = int(target * rng.lognormvariate(-1.2, 0.9) / (3 if nxt != "resolved" else 1))
        if at + step > created_s + age or rng.random() < 0.03:
            break
        at += max(step, 60)
        times[nxt], status = at, nxt
        history.append((at, "status", nxt, NOTES[nxt] if rng.random() < 0.5 else None))
    if status == "resolved" and rng.random() < 0.6 and at + 86400 * 3 < created_s + age:
        at += 86400 * 3
        times["closed"], status = at, "closed"
        history.append((at, "status", "closed", None))
    rating = (
        rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 4])[0]
        if status in ("resolved", "closed") and rng.random() < 0.4
        else None
    )
    linked = citizens and rng.random() < 0.05
    channel = rng.choices(list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))[0]
    kind = KIND_OF.get(s.code, "complaint" if rng.random() < 0.15 else "request")
    text = rng.choice(TEXTS.get(s.code, ["A request."]))
    values = {"text": text, "redacted": text}
    if s.location != "none":
        values["location"] = json.dumps({"address": None, "lat": round(lat, 5), "lon": round(lon, 5)})
    answers = {a.code: a.values[rng.randrange(len(a.values))].key for a in s.attributes if a.required and a.values}
    if answers:
        values["attributes"] = json.dumps(answers, separators=(",", ":"))
    row_area = area.code if s.location != "none" else None
    row = {
        "id": iid,
        "citizen_id": rng.choice(citizens) if linked else None,
        "agency": s.agency,
        "service_code": s.code,
        "kind": kind,
        "channel": channel,
        "source": "open311" if channel == "app" else "vault",
        "status": status,
        "area": row_area,
        "home": s.home,
        "unit": None,
        "created_s": created_s,
        "updated_s": at,
        "acknowledged_s": times.get("acknowledged"),
        "in_progress_s": times.get("in_progress"),
        "resolved_s": times.get("resolved"),
        "closed_s": times.get("closed"),
        "ack_due_s": created_s + s.ack_target_s,
        "resolve_due_s": created_s + s.resolve_target_s,
        "rating": rating,
        "pii_found": "{}",
    }
    fact = {
        "interaction_id": iid,
        "agency": s.agency,
        "service_code": s.code,
        "kind": kind,
        "channel": channel,
        "area": row_area,
        "status": status,
        "created_s": created_s,
        "acknowledged_s": times.get("acknowledged"),
        "resolved_s": times.get("resolved"),
        "closed_s": times.get("closed"),
        "ack_target_s": s.ack_target_s,
        "resolve_target_s": s.resolve_target_s,
        "rating": rating,
    }
    if rating is not None:
        history.append((at, "rating", status, None))
    return {"row": row, "values": values, "fact": fact, "history": history}
