"""The audit anchor (keys/anchor.py): the key store keeps the newest committed signed checkpoint, so
a data store rolled back to an earlier state (an old head replayed, later events and checkpoints
deleted, or simply an old copy put back) no longer verifies. Both backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from keys.anchor import Anchored, AuditAnchor, audit_anchor
from tests.support.audit_helpers import BACKENDS, CHECKPOINT_EVERY, CLERK, backend_settings, clone_data_store
from vault.audit.log import Event, anchored
from vault.audit.verify import verify_database
from vault.runtime import Vault, init_vault, open_vault
from vault.settings import Settings


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return backend_settings(request, tmp_path / "data", request.param)


@pytest.fixture
def vault(settings: Settings) -> Iterator[Vault]:
    v = init_vault(settings)
    yield v
    v.close()


def _append(vault: Vault, n: int) -> None:
    for i in range(n):
        vault.audit.record(CLERK, Event("audit.read", reason=f"anchor test {i}"))


def test_the_anchor_follows_the_newest_committed_checkpoint(vault: Vault) -> None:
    anchor = vault.audit.anchor
    assert anchor is not None
    _append(vault, CHECKPOINT_EVERY)  # the first checkpoint: nothing committed before it to anchor
    assert anchor.get() is None
    first = vault.audit.latest_checkpoint()
    _append(vault, CHECKPOINT_EVERY)  # the second checkpoint anchors the first
    assert first is not None and anchor.get() == anchored(first)
    assert verify_database(vault.audit).ok
    second = vault.audit.latest_checkpoint()
    _append(vault, 1)
    third = vault.audit.checkpoint()  # an explicit checkpoint (audit export) anchors the one before it
    assert second is not None and third.count == 2 * CHECKPOINT_EVERY + 1
    assert anchor.get() == anchored(second)
    anchor.advance(anchored(first))  # never moves back
    assert anchor.get() == anchored(second)


def test_a_data_store_put_back_to_an_earlier_state_is_reported(
    vault: Vault, settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _append(vault, CHECKPOINT_EVERY + 2)
    vault.close()
    earlier = clone_data_store(settings, request, tmp_path / "earlier")  # e.g. an old backup
    live = open_vault(settings)
    try:
        _append(live, 3 * CHECKPOINT_EVERY)  # checkpoints move on; the anchor follows them
        assert verify_database(live.audit).ok
    finally:
        live.close()
    rolled_back = open_vault(earlier)  # the data store as it was, the key store as it is
    try:
        report = verify_database(rolled_back.audit)
        assert report.finding is not None and report.finding.kind == "rolled-back", report.finding
        assert report.finding.seq == CHECKPOINT_EVERY + 3  # the first event the rolled-back log lacks
        rolled_back.audit.anchor = None  # control: without the anchor the rollback goes unseen
        assert verify_database(rolled_back.audit).ok
    finally:
        rolled_back.close()


def test_an_edited_anchor_is_reported(vault: Vault) -> None:
    _append(vault, 2 * CHECKPOINT_EVERY)
    assert verify_database(vault.audit).ok
    with vault.key_engine.begin() as conn:
        conn.execute(update(audit_anchor).values(ts="2000-01-01T00:00:00.000000Z"))
    report = verify_database(vault.audit)
    assert report.finding is not None and report.finding.kind == "bad-anchor"


def test_the_anchor_row_only_moves_forward(vault: Vault) -> None:
    anchor = AuditAnchor(vault.key_engine)
    later = Anchored(20, b"\x02" * 32, "2026-11-25T00:00:00.000000Z", "k", b"s")
    earlier = Anchored(10, b"\x01" * 32, "2026-11-24T00:00:00.000000Z", "k", b"s")
    anchor.advance(later)
    anchor.advance(earlier)
    assert anchor.get() == later


def test_a_busy_key_store_never_holds_up_an_append(tmp_path: Path) -> None:
    """The anchor does not wait for the key store's write lock (appends run on the server's event
    loop): while another writer holds it, checkpoints are written without advancing the anchor, and
    the next checkpoint after it is free carries the anchor on."""
    vault = init_vault(
        Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10, audit_checkpoint_every=CHECKPOINT_EVERY)
    )
    try:
        anchor = vault.audit.anchor
        assert anchor is not None
        _append(vault, 2 * CHECKPOINT_EVERY)
        before = anchor.get()
        assert before is not None
        other = sqlite3.connect(tmp_path / "data" / "keystore.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer of the key store (a data key being stored)
        try:
            _append(vault, CHECKPOINT_EVERY)  # a checkpoint is due: written, the anchor skipped
            assert anchor.get() == before
        finally:
            other.execute("ROLLBACK")
            other.close()
        _append(vault, CHECKPOINT_EVERY)
        after = anchor.get()
        assert after is not None and after.count == 3 * CHECKPOINT_EVERY
        assert verify_database(vault.audit).ok
    finally:
        vault.close()


def test_a_checkpoint_that_is_rolled_back_is_never_anchored(vault: Vault) -> None:
    """Two checkpoints in one transaction (a large grant page audited in batches): the second must
    not anchor the first, which is not committed yet; if the transaction fails, nothing of it
    reaches the key store."""
    anchor = vault.audit.anchor
    assert anchor is not None
    _append(vault, 2 * CHECKPOINT_EVERY)
    committed = vault.audit.latest_checkpoint()
    assert committed is not None

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), vault.audit.transaction() as conn:
        for _ in range(3):  # three checkpoints inside the transaction
            vault.audit.append(conn, CLERK, [Event("audit.read", reason=str(i)) for i in range(CHECKPOINT_EVERY)])
        raise Abandon
    assert anchor.get() == anchored(committed)  # the newest committed one, never one of the transaction's
    assert verify_database(vault.audit).ok
    _append(vault, 2 * CHECKPOINT_EVERY)
    assert verify_database(vault.audit).ok
