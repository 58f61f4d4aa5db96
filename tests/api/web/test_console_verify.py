"""The console's "verify now" as a run with progress (issue 14): any worker can show it, only its
requester sees it, and a walk that dies or fails says so instead of hanging. All people invented."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.web import console_verify
from tests.support.web_world import WebWorld
from vault.audit import verify_runs
from vault.audit.log import Actor, Event, iso
from vault.audit.verify_runs import STALE, audit_verify_runs

OFFICER = Actor("compliance@vault", "compliance-officer", "vault")


def test_a_walk_records_its_progress_and_its_result_on_the_run(web: WebWorld) -> None:
    web.vault.audit.record(OFFICER, *(Event("audit.read", reason="filler") for _ in range(25)))
    run, new = verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))
    assert new and run.state(datetime.now(UTC)) == "running"
    again, new_again = verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))
    assert (again.id, new_again) == (run.id, False)  # pressing twice follows the walk under way

    console_verify._walk(web.vault.audit, OFFICER, run.id)

    done = verify_runs.get(web.vault.data_engine, run.id)
    assert done is not None and done.status == "done" and done.checked == done.total >= 25
    (recorded,) = [e for e in web.events(action="audit.verify") if e["seq"] == done.event_seq]
    assert recorded["reason"] == "intact" and recorded["actor"] == OFFICER.subject
    assert verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))[1]  # a new one now


def test_a_failed_walk_says_so_and_records_no_result(web: WebWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> object:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(verify_runs, "verify_database", broken)
    run, _ = verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))
    before = len(web.events(action="audit.verify"))
    console_verify._walk(web.vault.audit, OFFICER, run.id)

    failed = verify_runs.get(web.vault.data_engine, run.id)
    assert failed is not None and failed.state(datetime.now(UTC)) == "failed" and failed.result == "RuntimeError"
    assert len(web.events(action="audit.verify")) == before
    web.sign_in(OFFICER.subject)
    page = web.client.get(f"/console/integrity/runs/{run.id}")
    assert page.status_code == 200 and "could not finish" in page.text and "Verify now" in page.text
    assert "the database went away" not in page.text


def test_the_progress_page_and_its_status_while_running_then_interrupted(web: WebWorld) -> None:
    run, _ = verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))
    verify_runs.advance(web.vault.data_engine, run.id, 10_000, 40_000, datetime.now(UTC))
    web.sign_in(OFFICER.subject)

    page = web.client.get(f"/console/integrity/runs/{run.id}")
    assert page.status_code == 200
    assert '<progress id="verify-progress" max="40000" value="10000">' in page.text
    assert "10000 of 40000 events checked" in page.text and 'src="/static/progress.js"' in page.text
    status = web.client.get(f"/console/integrity/runs/{run.id}/status")
    assert status.json() == {
        "state": "running",
        "checked": 10_000,
        "total": 40_000,
        "next": f"/console/integrity/runs/{run.id}",
    }
    assert status.headers["cache-control"] == "no-store"

    # Its walker's process died: the heartbeat stops, and the page says so and offers to start again.
    with web.vault.data_engine.begin() as conn:
        old = iso(datetime.now(UTC) - STALE * 2)
        conn.execute(audit_verify_runs.update().values(updated_at=old))
    page = web.client.get(f"/console/integrity/runs/{run.id}")
    assert "stopped before it finished" in page.text and "Verify now" in page.text
    assert web.client.get(f"/console/integrity/runs/{run.id}/status").json()["state"] == "interrupted"
    assert verify_runs.start(web.vault.data_engine, OFFICER.subject, datetime.now(UTC))[1]


def test_only_the_requester_sees_a_run(web: WebWorld) -> None:
    run, _ = verify_runs.start(web.vault.data_engine, "compliance@tax-office", datetime.now(UTC))
    web.sign_in(OFFICER.subject)
    for path in (f"/console/integrity/runs/{run.id}", f"/console/integrity/runs/{run.id}/status"):
        assert web.client.get(path).status_code == 404
    assert web.client.get("/console/integrity/runs/not-a-run").status_code == 422
    web.sign_in("citizen-0")
    assert web.client.get(f"/console/integrity/runs/{run.id}/status").status_code == 403
