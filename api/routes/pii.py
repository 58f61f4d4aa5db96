"""PII detection: scan a text for personal data (nothing stored), and the findings kept on intake.

``POST /v1/pii/scan`` caps the text at 100,000 characters (413 above; the body limit of the app also
applies), accepts an empty text (200, no entities), refuses text that is not valid Unicode (422).
The text is never stored or logged; the call is audited with the number of entities only.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from api.bodies import AuthFirstRoute
from api.errors import ApiProblem
from api.schemas import (
    PiiEntityCount,
    PiiEntityPublic,
    PiiFieldFindings,
    PiiFindingsPublic,
    PiiScanRequest,
    PiiScanResult,
)
from api.security.auth import Principal, actor, require
from vault.audit.log import Event
from vault.pii.intake import read_findings
from vault.pii.model import redact

router = APIRouter(tags=["pii"], route_class=AuthFirstRoute)
MAX_SCAN_CHARS = 100_000


@router.post("/v1/pii/scan", response_model=PiiScanResult)
def scan(body: PiiScanRequest, request: Request, who: Principal = require("pii", "scan")) -> PiiScanResult:
    """Entities (type, character offsets, score) in ``text``; with ``redact``, the text with ``[TYPE]`` in place."""
    text = body.text
    if len(text) > MAX_SCAN_CHARS:
        raise ApiProblem(413, "too-large", "Text too large", f"at most {MAX_SCAN_CHARS} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiProblem(422, "invalid-text", "The text is not valid Unicode", "lone surrogate characters") from None
    vault = request.app.state.vault
    entities = vault.profiles.pii.detector().scan(text)
    vault.audit.record(actor(request, who), Event("pii.scan", reason=f"{len(entities)} entities"))
    return PiiScanResult(
        entities=[PiiEntityPublic(type=e.type, start=e.start, end=e.end, score=e.score) for e in entities],
        redacted=redact(text, entities) if body.redact else None,
    )


@router.get("/v1/pii/findings/{citizen_id}", response_model=PiiFindingsPublic)
def findings(citizen_id: uuid.UUID, request: Request, who: Principal = require("pii", "read")) -> PiiFindingsPublic:
    """What intake screening found in a citizen's free-text fields (types, counts, scores, action taken)."""
    vault = request.app.state.vault
    stored = read_findings(vault.data_engine, citizen_id)
    vault.audit.record(actor(request, who), Event("pii.findings.read", citizen_id=citizen_id, fields=sorted(stored)))
    return PiiFindingsPublic(
        citizen_id=citizen_id,
        fields={
            name: PiiFieldFindings(
                entities={
                    t: PiiEntityCount(count=int(c["count"]), max_score=c["max_score"]) for t, c in f["entities"].items()
                },
                forbidden=f["forbidden"],
                action=f["action"],
                scanned_at=f["scanned_at"],
            )
            for name, f in stored.items()
        },
    )
