"""A citizen's access bundle (GDPR Art. 15 and 20): data, consents with receipts, grants, access log, signed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from vault.audit.log import Actor, iso
from vault.audit.review import access_log
from vault.runtime import Vault

TYP = "citizen-export+jwt"
MAX_LOG_ENTRIES = 100_000


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
    }
    return document, vault.signing.sign_jws(document, TYP)
