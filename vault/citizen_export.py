"""A citizen's access bundle (GDPR Art. 15 and 20): data, consents with receipts, grants, access log, signed.

JSON (the default) is the signed bundle. CSV (:func:`as_csv`) is the same content for spreadsheets:
one row per item, its ``kind`` in the first column (``export``, ``field``, ``consent``,
``consent-version``, ``grant``, ``access``), the union of the items' keys as further columns (lists
and objects as JSON), cells escaped against formula injection like the audit CSV. It is not signed:
the JSON is the verifiable copy.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vault.audit.deferral import has_deferred
from vault.audit.export import csv_cell
from vault.audit.log import Actor, Event, iso
from vault.audit.review import AccessEntry, access_log
from vault.runtime import Vault

TYP = "citizen-export+jwt"
MAX_LOG_ENTRIES = 100_000


def access_page(
    vault: Vault, citizen_id: str, actor: Actor, after: int = 0, limit: int = 100
) -> tuple[list[AccessEntry], int | None, bool]:
    """A page of who read the citizen's data (deferred entries left out, per the approved
    deferrals), the next page's cursor, and whether some entries are deferred; the citizen's
    viewing is itself recorded (``me.access-log``). The API and the portal both call this."""
    now = datetime.now(UTC)
    entries, next_after = access_log(vault.data_engine, citizen_id, now, after, limit)
    deferred = has_deferred(vault.data_engine, citizen_id, now)
    vault.audit.record(actor, Event("me.access-log", citizen_id=citizen_id))
    return entries, next_after, deferred


def bundle(vault: Vault, citizen: uuid.UUID, actor: Actor) -> tuple[dict[str, Any], str]:
    """The bundle and its compact JWS. Reading the profile for it is audited (``me.export``)."""
    now = datetime.now(UTC)
    profile = vault.profiles.read(citizen, actor=actor, action="me.export")
    cid = str(citizen)
    entries: list[dict[str, Any]] = []
    after = 0
    while len(entries) < MAX_LOG_ENTRIES:
        page, nxt = access_log(vault.data_engine, cid, now, after, 1000)
        entries += [vars(e) for e in page]
        if nxt is None:
            break
        after = nxt
    document = {
        "format": "citizen-vault-access-bundle/1",
        "generated_at": iso(now),
        "citizen_id": cid,
        "profile": {
            "status": profile.status,
            "fields": profile.values,
            "provenance": {
                n: {
                    "source_agency": p.source_agency,
                    "updated_at": p.updated_at.isoformat(),
                    "hold_basis": p.hold_basis,
                }
                for n, p in profile.provenance.items()
            },
        },
        "consents": [
            c.public() | {"versions": vault.consents.receipts(cid, c.id)} for c in vault.consents.find(citizen_id=cid)
        ],
        "grants": [
            {k: v for k, v in g.public().items() if k != "jws"} | {"jws": g.jws} for g in vault.grants.about(cid)
        ],
        "access_log": entries,
        # Only that some entries are deferred (a registered legal basis, approved): never which or why.
        "deferred_entries": has_deferred(vault.data_engine, cid, now),
    }
    return document, vault.signing.sign_jws(document, TYP)


def _items(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    profile = document["profile"]
    yield {
        "kind": "export",
        "format": document["format"],
        "generated_at": document["generated_at"],
        "citizen_id": document["citizen_id"],
        "status": profile["status"],
        "deferred_entries": document["deferred_entries"],
    }
    for name, value in profile["fields"].items():
        yield {"kind": "field", "name": name, "value": value, **profile["provenance"].get(name, {})}
    for consent in document["consents"]:
        yield {"kind": "consent", **{k: v for k, v in consent.items() if k != "versions"}}
        for version in consent["versions"]:
            yield {"kind": "consent-version", "consent_id": consent["id"], **version}
    for grant in document["grants"]:
        yield {"kind": "grant", **grant}
    for entry in document["access_log"]:
        yield {"kind": "access", **entry}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def as_csv(document: dict[str, Any]) -> str:
    """The bundle as one CSV: a row per item with a ``kind`` column (module docstring)."""
    items = list(_items(document))
    columns = list(dict.fromkeys(key for item in items for key in item))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for item in items:
        writer.writerow([csv_cell(_text(item.get(c))) for c in columns])
    return out.getvalue()
