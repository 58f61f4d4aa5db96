"""Tampering with the stored audit log, as a database-level attacker: the append-only triggers are
removed first, then rows are edited, deleted, inserted, swapped, truncated or rewritten with
recomputed hashes. verify_database must name the kind of damage and the first event it touches.

The log under attack holds 32 events from real operations, with signed checkpoints every 7
(at 7, 14, 21, 28): events 29..32 are the tail that only the MACed head record protects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from tests.support.audit_helpers import (
    BACKENDS,
    backend_settings,
    clone_data_store,
    drop_guards,
    forged_event,
    load_events,
    populate,
    rechain,
    replace_events,
)
from vault.audit.chain import GENESIS
from vault.audit.tables import audit_checkpoints, audit_head
from vault.audit.verify import verify_database
from vault.errors import AuditUnavailable
from vault.runtime import Vault, init_vault, open_vault
from vault.settings import Settings

TOTAL = 32
CHECKPOINTS = [7, 14, 21, 28]
LAST_CP = CHECKPOINTS[-1]
MIDDLE = 10  # an event between checkpoints, well inside the signed part of the log


@pytest.fixture(scope="module", params=BACKENDS)
def golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One vault per backend whose audit log holds TOTAL events and verifies; closed, ready to clone."""
    vault = init_vault(backend_settings(request, tmp_path_factory.mktemp("golden"), request.param))
    try:
        populate(vault)
        for parallel_from in (TOTAL + 1, 1):  # one process, then two split at a checkpoint
            report = verify_database(vault.audit, parallel_from=parallel_from)
            assert report.ok, report.finding
            assert (report.events, report.head_count, report.checkpoints) == (TOTAL, TOTAL, len(CHECKPOINTS))
        with vault.data_engine.connect() as conn:
            assert list(conn.scalars(select(audit_checkpoints.c.count).order_by("count"))) == CHECKPOINTS
    finally:
        vault.close()
    return vault.settings


@pytest.fixture
def logged(golden: Settings, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    """A fresh copy of the golden log, its append-only triggers removed by the attacker."""
    vault = open_vault(clone_data_store(golden, request, tmp_path / "copy"))
    assert verify_database(vault.audit).ok
    drop_guards(vault.data_engine)
    yield vault
    vault.close()


@dataclass
class Attack:
    """Rows as the attacker sees them; ``commit`` writes them back."""

    engine: Engine
    rows: list[dict[str, Any]]

    def at(self, seq: int) -> dict[str, Any]:
        return self.rows[seq - 1]

    def commit(self) -> None:
        replace_events(self.engine, self.rows)


Tamper = Callable[[Attack, int], None]


def edit_actor(a: Attack, seq: int) -> None:
    a.at(seq)["actor"] = "someone-else"


def edit_fields(a: Attack, seq: int) -> None:
    a.at(seq)["fields"] = '["family_name"]'


def edit_prev_hash(a: Attack, seq: int) -> None:
    a.at(seq)["prev_hash"] = bytes(32)


def edit_own_hash(a: Attack, seq: int) -> None:
    a.at(seq)["hash"] = bytes(reversed(a.at(seq)["hash"]))


def edit_and_rehash_only_that_event(a: Attack, seq: int) -> None:
    a.at(seq)["outcome"] = "denied"
    rechain(a.rows[:seq], seq - 1)
    assert a.at(seq + 1)["prev_hash"] != a.at(seq)["hash"]  # the next event still links to the old hash


def delete_event(a: Attack, seq: int) -> None:
    del a.rows[seq - 1]


def delete_event_and_renumber(a: Attack, seq: int) -> None:
    del a.rows[seq - 1]
    for row in a.rows[seq - 1 :]:
        row["seq"] -= 1


def insert_forged_event(a: Attack, seq: int) -> None:
    prev, ts = (a.at(seq - 1)["hash"], a.at(seq - 1)["ts"]) if seq > 1 else (GENESIS, a.at(1)["ts"])
    for row in a.rows[seq - 1 :]:
        row["seq"] += 1
    a.rows.insert(seq - 1, forged_event(seq, prev, ts))


def swap_with_next(a: Attack, seq: int) -> None:
    first, second = a.at(seq), a.at(seq + 1)
    first["seq"], second["seq"] = seq + 1, seq
    a.rows[seq - 1], a.rows[seq] = second, first


def truncate_from(a: Attack, seq: int) -> None:
    del a.rows[seq - 1 :]


def append_behind_head(a: Attack, seq: int) -> None:
    assert seq == len(a.rows) + 1
    a.rows.append(forged_event(seq, a.rows[-1]["hash"], a.rows[-1]["ts"]))


def rewrite_chain_from(a: Attack, seq: int) -> None:
    for row in a.rows[seq - 1 :]:
        row["actor"] = "someone-else"
    rechain(a.rows, seq - 1)


TAIL = LAST_CP + 2  # an event after the last checkpoint, protected by the head record only
# (attack, where, expected kind, expected first seq)
EVENT_ATTACKS: list[tuple[Tamper, int, str, int]] = [
    (edit_actor, MIDDLE, "edited", MIDDLE),
    (edit_fields, MIDDLE, "edited", MIDDLE),
    (edit_fields, TAIL, "edited", TAIL),
    (edit_prev_hash, MIDDLE, "edited", MIDDLE),
    (edit_own_hash, MIDDLE, "edited", MIDDLE),
    (edit_and_rehash_only_that_event, 1, "edited", 1),
    (edit_and_rehash_only_that_event, MIDDLE, "edited", MIDDLE),
    (edit_and_rehash_only_that_event, TAIL, "edited", TAIL),
    (delete_event, 1, "missing", 1),
    (delete_event, MIDDLE, "missing", MIDDLE),
    (delete_event_and_renumber, 1, "missing", 1),
    (delete_event_and_renumber, MIDDLE, "missing", MIDDLE),
    (delete_event_and_renumber, TAIL, "missing", TAIL),
    (insert_forged_event, 1, "inserted", 1),
    (insert_forged_event, MIDDLE, "inserted", MIDDLE),
    (insert_forged_event, TAIL, "inserted", TAIL),
    (swap_with_next, 1, "reordered", 1),
    (swap_with_next, MIDDLE, "reordered", MIDDLE),
    (truncate_from, LAST_CP + 1, "missing", LAST_CP + 1),  # the unsigned tail: the head's count tells
    (truncate_from, LAST_CP - 2, "missing", LAST_CP - 2),  # into the signed part: the checkpoint tells
    (append_behind_head, TOTAL + 1, "inserted", TOTAL + 1),
    (rewrite_chain_from, LAST_CP + 1, "head-mismatch", LAST_CP + 1),  # consistent, but not the MACed head
    (rewrite_chain_from, 3, "checkpoint-mismatch", CHECKPOINTS[0]),
]


@pytest.mark.parametrize(
    ("tamper", "where", "kind", "seq"), EVENT_ATTACKS, ids=[f"{t.__name__}@{w}" for t, w, _, _ in EVENT_ATTACKS]
)
def test_tampered_events_are_named_by_kind_and_first_seq(
    logged: Vault, tamper: Tamper, where: int, kind: str, seq: int
) -> None:
    attack = Attack(logged.data_engine, load_events(logged.data_engine))
    tamper(attack, where)
    attack.commit()
    # Once in one process, once split at the checkpoint nearest the middle (14) across two.
    for parallel_from in (TOTAL + 1, 1):
        report = verify_database(logged.audit, parallel_from=parallel_from)
        assert not report.ok
        assert report.finding is not None
        assert (report.finding.kind, report.finding.seq) == (kind, seq), (parallel_from, report.finding)


def test_a_consistent_rewrite_without_checkpoints_still_fails_the_head(logged: Vault) -> None:
    """Deleting every checkpoint removes the signed anchors; the MACed head still records the newest one."""
    attack = Attack(logged.data_engine, load_events(logged.data_engine))
    rewrite_chain_from(attack, 3)
    attack.commit()
    with logged.data_engine.begin() as conn:
        conn.execute(audit_checkpoints.delete())
    report = verify_database(logged.audit)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == ("bad-checkpoint", 28)


def test_deleting_the_newest_checkpoint_alone_is_detected(logged: Vault) -> None:
    """The head's MAC covers the count of the newest checkpoint: dropping checkpoints shows."""
    with logged.data_engine.begin() as conn:
        conn.execute(audit_checkpoints.delete().where(audit_checkpoints.c.count == 28))
    report = verify_database(logged.audit)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == ("bad-checkpoint", 28)


def _edit_checkpoint(engine: Engine, count: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.count == count).values(**values))


def _edit_head(engine: Engine, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(**values))


def _head(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(audit_head)).one()._mapping)


RECORD_ATTACKS: list[tuple[str, Callable[[Engine], None], str, int]] = [
    ("checkpoint_head_hash", lambda e: _edit_checkpoint(e, 14, head_hash=bytes(32)), "bad-checkpoint", 14),
    ("checkpoint_signature", lambda e: _edit_checkpoint(e, 21, signature=bytes(64)), "bad-checkpoint", 21),
    ("checkpoint_unknown_kid", lambda e: _edit_checkpoint(e, 7, kid="audit-unknown"), "bad-checkpoint", 7),
    ("head_count", lambda e: _edit_head(e, count=TOTAL - 1), "head-mismatch", TOTAL - 1),
    ("head_hash", lambda e: _edit_head(e, head_hash=bytes(32)), "head-mismatch", TOTAL),
    ("head_mac", lambda e: _edit_head(e, mac=bytes(32)), "head-mismatch", TOTAL),
]


@pytest.mark.parametrize(("edit", "kind", "seq"), [r[1:] for r in RECORD_ATTACKS], ids=[r[0] for r in RECORD_ATTACKS])
def test_edited_checkpoints_and_head_are_named(
    logged: Vault, edit: Callable[[Engine], None], kind: str, seq: int
) -> None:
    edit(logged.data_engine)
    report = verify_database(logged.audit)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (kind, seq), report.finding


def test_a_missing_head_record_is_reported(logged: Vault) -> None:
    with logged.data_engine.begin() as conn:
        conn.execute(audit_head.delete())
    report = verify_database(logged.audit)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == ("head-mismatch", 1)


def test_a_forged_head_stops_further_appends(logged: Vault) -> None:
    """A head that fails its MAC also refuses new events (no audit, no data), not only verify."""
    head = _head(logged.data_engine)
    _edit_head(logged.data_engine, count=head["count"] + 5)
    with pytest.raises(AuditUnavailable, match="integrity"):
        logged.profiles.read(uuid.UUID(load_events(logged.data_engine)[0]["citizen_id"]))
