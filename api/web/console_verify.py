"""The compliance console's "verify now", followed on a progress page (issue 14).

The POST starts the walk beside the request (a thread of this process: the page answers at once)
and sends the officer to the run's page, which shows how far it has got. Progress is a row
(vault/audit/verify_runs.py), so whichever worker serves the page can show it. Without script the
page has a "Check progress" link; with it, /static/progress.js updates the bar and moves on when the
walk is done. The result is recorded as ``audit.verify`` by the same function as ``GET /v1/audit/verify``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
from api.security.auth import Principal, actor
from api.security.sessions import check_csrf, page_user
from api.web.render import Form, read_form, render
from vault.audit import verify_runs
from vault.audit.log import Actor, AuditLog
from vault.audit.verify_runs import Run

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
RunId = Annotated[uuid.UUID, Path()]
DONE_URL = "/console/integrity?verified=1"
# How often a walk writes its progress row (the walk reports every 10,000 events).
EVERY = 0.5


def _walk(audit: AuditLog, who: Actor, run_id: str) -> None:
    """Verify, recording progress and the outcome on the run; a failure is the run's, never silent."""
    engine = audit.engine
    written = 0.0

    def progress(checked: int, total: int) -> None:
        nonlocal written
        if time.monotonic() - written >= EVERY:
            written = time.monotonic()
            verify_runs.advance(engine, run_id, checked, total, datetime.now(UTC))

    try:
        report, seq = verify_runs.verify_and_record(audit, who, progress)
    except Exception as exc:  # the run says it failed; the server log has the type, never values
        log.error("verify run %s failed: %s", run_id, type(exc).__name__)
        verify_runs.finish(engine, run_id, datetime.now(UTC), result=type(exc).__name__, event_seq=None)
        return
    verify_runs.advance(engine, run_id, report.events, report.events, datetime.now(UTC))
    verify_runs.finish(engine, run_id, datetime.now(UTC), result="", event_seq=seq)


def _start(request: Request, who: Principal, form: Form) -> Response:
    check_csrf(request, form.get("csrf_token"))
    audit = request.app.state.vault.audit
    run, new = verify_runs.start(audit.engine, who.subject, datetime.now(UTC))
    if new:
        walker = threading.Thread(target=_walk, args=(audit, actor(request, who), run.id), name="audit-verify")
        walker.daemon = True
        walker.start()
    return RedirectResponse(f"/console/integrity/runs/{run.id}", status_code=303)


@router.post("/console/integrity/verify")
async def verify(request: Request, who: Principal = page_user("audit", "read")) -> Response:
    """Start re-walking the whole chain (CSRF-protected), or follow the walk of yours under way."""
    form = await read_form(request)
    return await run_in_threadpool(_start, request, who, form)


def _own_run(request: Request, who: Principal, run_id: uuid.UUID) -> Run:
    run = verify_runs.get(request.app.state.vault.data_engine, str(run_id))
    if run is None or run.requested_by != who.subject:
        raise ApiProblem(404, "not-found", "Not found", "no such verification of yours")
    return run


@router.get("/console/integrity/runs/{run_id}")
def run_page(request: Request, run_id: RunId, who: Principal = page_user("audit", "read")) -> Response:
    """How far the walk has got; once it is done, the integrity page with its result."""
    run = _own_run(request, who, run_id)
    state = run.state(datetime.now(UTC))
    if state == "done":
        return RedirectResponse(DONE_URL, status_code=303)
    return render(request, "console/verify_run.html", run=run, state=state)


@router.get("/console/integrity/runs/{run_id}/status")
def run_status(request: Request, run_id: RunId, who: Principal = page_user("audit", "read")) -> Response:
    """The run's progress for /static/progress.js: state, events checked of the total, where to go next."""
    run = _own_run(request, who, run_id)
    state = run.state(datetime.now(UTC))
    after = DONE_URL if state == "done" else f"/console/integrity/runs/{run.id}"
    return JSONResponse({"state": state, "checked": run.checked, "total": run.total, "next": after})
