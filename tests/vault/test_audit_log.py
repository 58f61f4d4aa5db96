"""The audit log on both backends: an intact log verifies, the product cannot rewrite it, an access
whose event cannot be written does not happen (no audit, no data), and events never carry values.

Tampering is in test_audit_tamper.py, concurrent appends in test_audit_concurrency.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from keys.audit_signing import verify as verify_signature
from keys.dekstore import data_keys
from tests.support.audit_helpers import (
    BACKENDS,
    CHECKPOINT_EVERY,
    CLERK,
    backend_settings,
    count_rows,
    load_events,
    populate,
    seqs,
)
from vault.audit import chain
from vault.audit.log import Actor, Event, _parse_iso, chain_rows, event_values, iso
from vault.audit.tables import audit_checkpoints, audit_events, audit_head
from vault.audit.verify import Row, load_checkpoints, verify_database, walk
from vault.errors import AuditUnavailable, Conflict
from vault.models import blind_index, citizens
from vault.runtime import Vault, init_vault

# Distinctive, clearly invented values that must never appear in an audit event.
MARKERS = {
    "given_name": "Zyxwvutsrq",
    "family_name": "Quokkamarkerson",
    "national_id": "864-209-753",
    "email": "audit.marker.person@example.org",
    "address": "12 Imaginary Lane Markerville",
    "health_notes": "Invented condition glimmerpox noted",
}
CORRECTED_PHONE = "+999 555 0199"


@pytest.fixture(params=BACKENDS)
def vault_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    """A fresh vault on each backend, checkpointing every CHECKPOINT_EVERY events."""
    vault = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield vault
    vault.close()


def test_an_intact_log_verifies_with_its_checkpoints(vault_env: Vault) -> None:
    populate(vault_env)
    report = verify_database(vault_env.audit)
    assert report.ok, report.finding
    assert (report.events, report.head_count) == (32, 32)
    checkpoints = load_checkpoints(vault_env.data_engine)
    assert [c.count for c in checkpoints] == [7, 14, 21, 28]
    rows = load_events(vault_env.data_engine)
    assert [r["seq"] for r in rows] == list(range(1, 33))
    # The chain rule and the checkpoint signatures, re-checked here independently of verify.py.
    prev = chain.GENESIS
    for row in rows:
        assert row["prev_hash"] == prev
        prev = chain.link(prev, [row[c] for c in chain.EVENT_COLUMNS])
        assert row["hash"] == prev
    keys = vault_env.audit.signer.public_keys
    for cp in checkpoints:
        assert cp.head_hash == rows[cp.count - 1]["hash"]
        assert verify_signature(keys[cp.kid], chain.checkpoint_message(cp.count, cp.head_hash, cp.ts), cp.signature)
    # The rows alone (an export) verify too, and the actors and outcomes are what happened.
    exported = [Row(r["seq"], [r[c] for c in chain.EVENT_COLUMNS], r["prev_hash"], r["hash"]) for r in rows]
    assert walk(exported, checkpoints, keys).ok
    assert sum(r["outcome"] == "denied" for r in rows) == 3
    assert {r["actor"] for r in rows} == {"operator", CLERK.subject}
    # A checkpoint on demand signs the head; asking again while nothing changed is a no-op.
    on_demand = vault_env.audit.checkpoint()
    assert (on_demand.count, on_demand.head_hash) == (32, rows[-1]["hash"])
    assert vault_env.audit.checkpoint() == on_demand
    assert verify_database(vault_env.audit).ok


def test_appends_continue_the_sequence_and_checkpoint_every_n(vault_env: Vault) -> None:
    first = vault_env.audit.record(CLERK, Event("test.one"))
    batch = vault_env.audit.record(CLERK, *[Event("test.batch", reason=f"n{i}") for i in range(2 * CHECKPOINT_EVERY)])
    assert first == [1]
    assert batch == list(range(2, 2 + 2 * CHECKPOINT_EVERY))
    # One append crossing the threshold twice writes one checkpoint, at its end.
    assert [c.count for c in load_checkpoints(vault_env.data_engine)] == [1 + 2 * CHECKPOINT_EVERY]
    assert verify_database(vault_env.audit).ok


def test_the_product_cannot_update_or_delete_audit_rows(vault_env: Vault) -> None:
    populate(vault_env)
    engine = vault_env.data_engine
    attempts = [
        update(audit_events).where(audit_events.c.seq == 3).values(actor="someone-else"),
        delete(audit_events).where(audit_events.c.seq == 32),
        delete(audit_events),
        update(audit_checkpoints).where(audit_checkpoints.c.count == 7).values(signature=bytes(64)),
        delete(audit_checkpoints),
    ]
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    if engine.dialect.name == "postgresql":
        for table in ("audit_events", "audit_checkpoints"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {table}")
    assert seqs(engine) == list(range(1, 33))
    assert count_rows(engine, audit_checkpoints) == 4
    assert verify_database(vault_env.audit).ok


def _refuse_audit_inserts(vault: Vault) -> None:
    """Make the database refuse every new audit event (a full disk, a revoked grant, a broken replica)."""
    with vault.data_engine.begin() as conn:
        if vault.data_engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit refused for the test'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit refused for the test'); END"
            )


def _allow_audit_inserts(vault: Vault) -> None:
    with vault.data_engine.begin() as conn:
        suffix = " ON audit_events" if vault.data_engine.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"DROP TRIGGER test_refuse_audit{suffix}")


def test_no_audit_no_data_when_the_log_refuses_the_event(vault_env: Vault) -> None:
    profiles, engine = vault_env.profiles, vault_env.data_engine
    cid = profiles.create(
        {"given_name": "Ottilie", "family_name": "Brambleworth", "email": "ottilie@example.org"}, "civil-registry"
    )
    counts = (
        count_rows(engine, citizens),
        count_rows(engine, blind_index),
        count_rows(vault_env.key_engine, data_keys),
    )
    events = load_events(engine)
    with engine.connect() as conn:
        head = conn.execute(select(audit_head)).one()
    _refuse_audit_inserts(vault_env)

    with pytest.raises(AuditUnavailable):
        profiles.read(cid)
    with pytest.raises(AuditUnavailable):
        profiles.create(
            {"given_name": "Halfrid", "family_name": "Nevermade", "email": "halfrid@example.org"}, "civil-registry"
        )
    with pytest.raises(AuditUnavailable):
        profiles.correct(cid, {"email": "changed@example.org"}, "tax-office")
    with pytest.raises(AuditUnavailable):
        profiles.lookup("email", "ottilie@example.org")
    with pytest.raises(AuditUnavailable):
        vault_env.audit.record(CLERK, Event("test.denied", "denied"))

    # Nothing was half-written: no citizen row, index entry or data key, no event, the head unmoved.
    assert (
        count_rows(engine, citizens),
        count_rows(engine, blind_index),
        count_rows(vault_env.key_engine, data_keys),
    ) == counts
    assert load_events(engine) == events
    with engine.connect() as conn:
        assert conn.execute(select(audit_head)).one() == head

    _allow_audit_inserts(vault_env)
    assert profiles.read(cid, ["email"]).values == {"email": "ottilie@example.org"}  # the correction never landed
    assert profiles.lookup("email", "halfrid@example.org") == []
    assert seqs(engine) == [1, 2, 3]  # the create before, and the read and look-up after
    assert verify_database(vault_env.audit).ok


def _audit_bytes(vault: Vault) -> bytes:
    """Every column of every audit row, as stored."""
    blobs = []
    with vault.data_engine.connect() as conn:
        for row in conn.execute(select(audit_events)):
            for value in row:
                blobs.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(blobs)


def test_events_carry_field_names_never_values(vault_env: Vault) -> None:
    profiles = vault_env.profiles
    cid = profiles.create(MARKERS, "civil-registry")
    assert profiles.read(cid, actor=CLERK).values["given_name"] == MARKERS["given_name"]
    assert profiles.read(cid, ["health_notes"], actor=CLERK, purpose="care").values
    assert profiles.lookup("national_id", MARKERS["national_id"], actor=CLERK) == [cid]
    assert profiles.lookup("email", MARKERS["email"].upper(), actor=CLERK) == [cid]
    profiles.correct(cid, {"phone": CORRECTED_PHONE}, "tax-office")
    with pytest.raises(Conflict):
        profiles.create({"given_name": "Other", "family_name": "Person", "national_id": MARKERS["national_id"]}, "x")
    values = [*MARKERS.values(), CORRECTED_PHONE, MARKERS["email"].upper(), MARKERS["national_id"].replace("-", "")]

    stored = _audit_bytes(vault_env)
    stores = {"audit rows": stored}
    if vault_env.data_engine.dialect.name == "sqlite":
        # The raw database file and its write-ahead log, where an event lands before a checkpoint.
        database = Path(str(vault_env.data_engine.url.database))
        files = [database, database.with_name(database.name + "-wal")]
        assert files[1].stat().st_size > 0
        stores["database file and WAL"] = b"".join(p.read_bytes() for p in files)
    for where, blob in stores.items():
        for value in values:
            for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                assert value.encode(encoding) not in blob, f"{value!r} found in {where} ({encoding})"
        # The search can succeed: names, ids and codes are there.
        assert b"citizens.read" in blob and b"health_notes" in blob
    assert str(cid).encode() in stored and b"conflict" in stored
    assert verify_database(vault_env.audit).ok
    assert uuid.UUID(load_events(vault_env.data_engine)[0]["citizen_id"]) == cid


def test_batched_rows_hash_exactly_the_canonical_encoding() -> None:
    """chain_rows (the fast path) hashes the bytes of chain.canonical(event_values(...)), for
    batches mixing kinds, outcomes, field lists, missing citizens and characters JSON escapes."""
    actor = Actor("clérk\n@agency", "caseworker", "tax-office", request_id="req-\u2028-1")
    events = [
        Event("grants.read", citizen_id=uuid.uuid4(), fields=["income", "given_name"], purpose="p", grant_id="g"),
        Event("grants.read", citizen_id=str(uuid.uuid4()), fields=["given_name", "income"], purpose="p", grant_id="g"),
        Event("grants.read", "failed", str(uuid.uuid4()), (), "p", "g", "unavailable"),
        Event("citizens.lookup", fields=["national_id"]),
        Event("citizens.read", "denied", uuid.uuid4(), ["health_notes"], reason='quote " and \\ backslash'),
        Event("grants.read", citizen_id=uuid.uuid4(), fields=["income", "given_name"], purpose="p", grant_id="g"),
    ]
    ts, prev = "2026-11-25T00:00:00.000000Z", bytes(range(32))
    rows, head = chain_rows(actor, events, ts, 7, prev)
    expected_prev = prev
    for seq, (row, event) in enumerate(zip(rows, events, strict=True), 7):
        values = event_values(actor, event, ts)
        assert row == (seq, *values, expected_prev, chain.link(expected_prev, values))
        expected_prev = row[-1]
    assert head == expected_prev


def test_the_verifiers_linker_hashes_exactly_like_link() -> None:
    """chain.Linker remembers encodings (at most ``limit``); its hashes are chain.link's."""
    link = chain.Linker(limit=3)
    prev = chain.GENESIS
    for i in range(20):
        values: list[str | None] = [
            "2026-11-25T00:00:00.000000Z",
            f"actor-{i % 4}",
            "clerk",
            "tax-office",
            "grants.read",
        ]
        values += [str(uuid.uuid4()), '["a","b"]', None, f'g"{i}\u2028', "allowed", None, "req-\u00e9"]
        assert link(prev, values) == chain.link(prev, values)
        prev = chain.link(prev, values)


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))])))
def test_audit_times_keep_their_hashed_form(moment: datetime) -> None:
    """iso() is the stored and hashed form of every audit time: it must not change with its code."""
    text = iso(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _parse_iso(text) == moment.astimezone(UTC)
