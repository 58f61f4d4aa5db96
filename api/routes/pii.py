"""PII detection: scan a text for personal data (nothing stored), and the findings kept on intake.

``POST /v1/pii/scan`` caps the text at 20,000 characters (413 above; the body limit of the app also
applies), accepts an empty text (200, no entities), refuses text that is not valid Unicode (422).
Scans run on their own bounded pool (api/scans.py), never in the request threadpool: a caller with
``pii_scans_per_caller`` scans queued or running gets 429 with Retry-After, everyone 503 when the
pool's queue is full. The text is never stored or logged; the call is audited with the number of
entities only.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.bodies import AuthFirstRoute
from api.errors import ApiProblem
from api.scans import Busy, ScanQueue
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
MAX_SCAN_CHARS = 20_000  # a scan's cost grows with its length: 100,000 let one caller hold a core for a second


@router.post("/v1/pii/scan", response_model=PiiScanResult)
async def scan(body: PiiScanRequest, request: Request, who: Principal = require("pii", "scan")) -> PiiScanResult:
    """Entities (type, character offsets, score) in ``text``; with ``redact``, the text with ``[TYPE]`` in place."""
    text = body.text
    if len(text) > MAX_SCAN_CHARS:
        raise ApiProblem(413, "too-large", "Text too large", f"at most {MAX_SCAN_CHARS} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiProblem(422, "invalid-text", "The text is not valid Unicode", "lone surrogate characters") from None
    vault = request.app.state.vault
    scans: ScanQueue = request.app.state.pii_scans
    detector = vault.profiles.pii.detector()
    try:
        entities = await scans.run(who.limit_key, lambda: detector.scan(text))
    except Busy as busy:
        if busy.reason == "scan-queue-full":
            raise ApiProblem(
                503, "busy", "Too many scans", "retry after 1 s", {"Retry-After": "1"}, reason=busy.reason
            ) from None
        raise ApiProblem(
            429,
            "rate-limited",
            "Too many requests",
            "your earlier scans are still running; retry after 1 s",
            {"Retry-After": "1"},
            reason=busy.reason,
        ) from None
    event = Event("pii.scan", reason=f"{len(entities)} entities")
    await run_in_threadpool(vault.audit.record, actor(request, who), event)  # a write: never on the loop
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
