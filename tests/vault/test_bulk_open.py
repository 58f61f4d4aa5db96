"""The bulk read path (grant reads): one-pass record parsing and per-citizen opening keep every
check of the single-value path (format, truncation, associated data)."""

from __future__ import annotations

import uuid

import pytest

from keys import aead
from keys.errors import DecryptionFailed
from vault.fieldcipher import SLOT_PROFILE, FieldCipher, open_parsed, pack_record, split, unpack_record, unpack_split

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
