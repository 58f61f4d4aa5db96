"""The bulk read path (grant reads): one-pass record parsing and per-citizen opening keep every
check of the single-value path (format, truncation, associated data)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from keys import aead
from keys.dekstore import data_keys
from keys.errors import DecryptionFailed
from tests.support.grants_helpers import TAX, citizen_fields
from vault.audit.tables import audit_events
from vault.audit.verify import verify_database
from vault.demo_registry import seed_purposes, seed_registry
from vault.fieldcipher import SLOT_PROFILE, FieldCipher, open_parsed, pack_record, split, unpack_record, unpack_split
from vault.grants.page_audit import BATCHED_FROM
from vault.grants.service import GrantRequest
from vault.models import citizens
from vault.profiles.records import open_records
from vault.runtime import init_vault
from vault.settings import Settings

VALUES = {"given_name": b"Ada", "family_name": b"Lovelace", "income": b"1200", "health_notes": b"x" * 300}


def _record() -> tuple[uuid.UUID, bytes, bytes]:
    citizen, dek = uuid.uuid4(), aead.new_key()
    sealed = FieldCipher(citizen, dek, SLOT_PROFILE, 3).encrypt_many(VALUES)
    return citizen, dek, pack_record(sealed)


def test_unpack_split_matches_unpack_then_split() -> None:
    _, _, record = _record()
    whole = unpack_record(record)
    parsed = unpack_split(record, {b"income": "income", b"given_name": "given_name"})
    assert parsed == [(n, *split(whole[n])) for n in sorted(whole) if n in {"income", "given_name"}]
    assert {(slot, version) for _, slot, version, _ in parsed} == {("P", 3)}


def test_open_parsed_round_trip_and_binding() -> None:
    citizen, dek, record = _record()
    parsed = unpack_split(record, {n.encode(): n for n in VALUES})
    keys = {(citizen.bytes, "P", 3): dek}
    assert dict(zip([p[0] for p in parsed], open_parsed(citizen.bytes, keys, parsed), strict=True)) == VALUES
    with pytest.raises(DecryptionFailed):  # the same ciphertext under another citizen's id
        other = uuid.uuid4().bytes
        open_parsed(other, {(other, "P", 3): dek}, parsed)
    income = next(p for p in parsed if p[0] == "income")
    renamed = [("given_name", *income[1:])]  # a value moved to another field
    with pytest.raises(DecryptionFailed):
        open_parsed(citizen.bytes, keys, renamed)
    with pytest.raises(KeyError):  # a key version the caller does not hold
        open_parsed(citizen.bytes, {(citizen.bytes, "P", 2): dek}, parsed)


@pytest.mark.parametrize("cut", [1, 5, 30, -1])
def test_truncated_records_are_refused(cut: int) -> None:
    _, _, record = _record()
    with pytest.raises(DecryptionFailed):
        unpack_split(record[:cut], {n.encode(): n for n in VALUES})
    with pytest.raises(DecryptionFailed):
        unpack_record(record[:cut])


def test_unknown_format_and_duplicate_fields_are_refused() -> None:
    citizen, dek, _ = _record()
    sealed = FieldCipher(citizen, dek, SLOT_PROFILE, 1).encrypt_many({"income": b"1"})
    bad = {"income": b"\x02" + sealed["income"][1:]}
    with pytest.raises(DecryptionFailed):
        unpack_split(pack_record(bad), {b"income": "income"})
    twice = pack_record(sealed) * 2
    with pytest.raises(DecryptionFailed):
        unpack_split(twice, {b"income": "income"})
    with pytest.raises(DecryptionFailed):
        unpack_record(twice)


def test_a_page_with_damaged_citizens_still_opens_the_others(tmp_path: Path) -> None:
    """open_records: a citizen whose data key is gone, whose wrapped key or record is damaged maps to
    None; every other citizen of the page opens, and nothing raises."""
    vault = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    try:
        ids = [vault.profiles.create(citizen_fields(i), "civil-registry") for i in range(6)]
        gone, bad_key, bad_record = ids[0], ids[1], ids[2]
        vault.dekstore.destroy(gone)
        with vault.key_engine.begin() as conn:
            wrapped = bytes(conn.scalar(select(data_keys.c.wrapped).where(data_keys.c.owner_id == bad_key)) or b"")
            flipped = bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 1])
            conn.execute(update(data_keys).where(data_keys.c.owner_id == bad_key).values(wrapped=flipped))
        with vault.data_engine.connect() as conn:
            stored = {cid: bytes(rec) for cid, rec in conn.execute(select(citizens.c.id, citizens.c.record))}
        pairs = [(c.bytes, stored[c]) for c in ids]
        damaged = unpack_record(pairs[2][1])
        damaged["income"] = damaged["income"][:-1] + bytes([damaged["income"][-1] ^ 1])  # its tag
        pairs[2] = (bad_record.bytes, pack_record(damaged))
        opened = open_records(vault.catalogue, vault.dekstore, pairs, {"family_name", "income"})
        assert [opened[c.bytes] is None for c in ids] == [True, True, True, False, False, False]
        for c in ids[3:]:
            assert opened[c.bytes] == {
                k: v for k, v in vault.profiles.read(c).values.items() if k in {"family_name", "income"}
            }
    finally:
        vault.close()


@pytest.mark.parametrize("size", [7, BATCHED_FROM + 4])  # events one by one, and in batches
def test_a_page_audits_every_citizen_with_what_was_read(tmp_path: Path, size: int) -> None:
    """One grants.read event per citizen of the page: allowed with the fields returned, or failed
    (unavailable) for a citizen whose data could not be opened; the chain still verifies."""
    vault = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    try:
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        ids = [
            vault.profiles.create(
                citizen_fields(i % 25) | {"national_id": f"{i:03d}-556-{i:03d}", "email": f"bulk{i}@example.org"},
                "civil-registry",
            )
            for i in range(size)
        ]
        fields = ["family_name", "given_name", "income"]
        grant = vault.grants.request(TAX, GrantRequest([str(c) for c in ids], "tax-assessment", fields, 3600, 5))
        vault.dekstore.destroy(ids[3])  # the key is gone: unreadable, not a reason to refuse the page
        _, records, _ = vault.grants.read(TAX, grant.id, limit=100)
        assert {c: v is None for c, v in records} == {str(c): c == ids[3] for c in ids}
        with vault.data_engine.connect() as conn:
            events = conn.execute(
                select(audit_events.c.citizen_id, audit_events.c.outcome, audit_events.c.fields, audit_events.c.reason)
                .where(audit_events.c.action == "grants.read", audit_events.c.grant_id == grant.id)
                .order_by(audit_events.c.seq)
            ).all()
        allowed = ("allowed", json.dumps(fields, separators=(",", ":")), None)
        expected = {str(c): ("failed", "[]", "unavailable") if c == ids[3] else allowed for c in ids}
        assert len(events) == len(ids)
        assert {e.citizen_id: (e.outcome, e.fields, e.reason) for e in events} == expected
        assert verify_database(vault.audit).ok
    finally:
        vault.close()


def test_seal_record_is_pack_record_of_encrypted_fields() -> None:
    """The import's one-pass sealing lays a record out exactly as pack_record of encrypt_many."""
    citizen, dek = uuid.uuid4(), aead.new_key()
    cipher = FieldCipher(citizen, dek, SLOT_PROFILE, 1)
    record = cipher.seal_record(VALUES)
    fields = unpack_record(record)
    assert list(fields) == sorted(VALUES)
    assert {n: cipher.decrypt(n, blob) for n, blob in fields.items()} == VALUES
    assert pack_record(fields) == record
    assert {n: len(blob) for n, blob in fields.items()} == {n: len(b) for n, b in cipher.encrypt_many(VALUES).items()}
