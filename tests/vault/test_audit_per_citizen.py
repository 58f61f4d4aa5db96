"""AuditLog.append_per_citizen (bulk imports) writes exactly the events append would, on both
backends: same columns, same chain, checkpoints and head as usual, across statement boundaries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.audit_helpers import BACKENDS, CLERK, backend_settings, load_events
from vault.audit import chain
from vault.audit.log import Actor, Event, event_values
from vault.audit.verify import verify_database
from vault.runtime import Vault, init_vault

# Characters the canonical JSON escapes, in the shared columns.
ODD_ACTOR = Actor('opérator "bulk"\n', "operator", "civil-registry", request_id="req-\u2028-7")


@pytest.fixture(params=BACKENDS)
def vault_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    vault = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield vault
    vault.close()


def test_per_citizen_events_are_the_events_append_writes(vault_env: Vault) -> None:
    audit = vault_env.audit
    template = Event("citizens.create", "allowed", fields=["income", "given_name"], reason='a "quoted" reason')
    batches = [[str(uuid.uuid4()) for _ in range(n)] for n in (1, 3, 450)]  # 450: several statements
    expected: list[tuple[Actor, Event]] = []
    returned: list[int] = []
    audit.record(CLERK, Event("agencies.create", reason="before"))
    expected.append((CLERK, Event("agencies.create", reason="before")))
    for ids in batches:
        with audit.transaction() as conn:
            returned += audit.append_per_citizen(conn, ODD_ACTOR, template, ids)
        expected += [(ODD_ACTOR, replace(template, citizen_id=c)) for c in ids]
    audit.record(CLERK, Event("agencies.create", reason="after"))
    expected.append((CLERK, Event("agencies.create", reason="after")))

    rows = load_events(vault_env.data_engine)
    assert [r["seq"] for r in rows] == list(range(1, len(expected) + 1))
    assert returned == list(range(2, len(expected)))
    prev = chain.GENESIS
    for row, (actor, event) in zip(rows, expected, strict=True):
        values = event_values(actor, event, row["ts"])
        assert [row[c] for c in chain.EVENT_COLUMNS] == values
        assert row["prev_hash"] == prev
        assert row["hash"] == chain.link(prev, values)
        prev = row["hash"]
    report = verify_database(audit)
    assert report.ok, report.finding


def test_no_citizens_no_events(vault_env: Vault) -> None:
    with vault_env.audit.transaction() as conn:
        assert vault_env.audit.append_per_citizen(conn, CLERK, Event("citizens.create"), []) == []
    assert load_events(vault_env.data_engine) == []
