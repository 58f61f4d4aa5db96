"""Known-answer tests freezing the field ciphertext format v1, and the refusals around it.

If one of the frozen vectors changes, stored data written by earlier versions would no longer
decrypt: bump the format version instead of editing a vector.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.errors import DecryptionFailed
from vault.fieldcipher import FieldCipher, field_aad, pack_record, read_header, unpack_record

CITIZEN = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
DEK = bytes(range(32))

# (slot, dek_version, field, plaintext, nonce, frozen ciphertext)
VECTORS = [
    (
        "P",
        1,
        "national_id",
        b"123-456-789",
        bytes(range(100, 112)),
        "0150000000016465666768696a6b6c6d6e6f7929ed4b4ddc60b3095a66bbe0a707336f8831296857b3dd138bf7",
    ),
    (
        "H",
        7,
        "given_name",
        "Zoë".encode(),
        bytes(12),
        "01480000000700000000000000000000000054d37675112ada70e7fd35cf5dd883ab220132a3",
    ),
]


@pytest.mark.parametrize(("slot", "version", "field", "plaintext", "nonce", "expected"), VECTORS)
def test_known_answer_vectors_are_frozen(
    slot: str, version: int, field: str, plaintext: bytes, nonce: bytes, expected: str
) -> None:
    cipher = FieldCipher(CITIZEN, DEK, slot, version)
    assert cipher.encrypt(field, plaintext, nonce=nonce).hex() == expected
    assert cipher.decrypt(field, bytes.fromhex(expected)) == plaintext


@pytest.mark.parametrize(("slot", "version", "field", "plaintext", "nonce", "expected"), VECTORS)
def test_format_matches_the_documented_layout(
    slot: str, version: int, field: str, plaintext: bytes, nonce: bytes, expected: str
) -> None:
    """Rebuild the ciphertext from docs/crypto.md with the raw primitive, independently of the wrapper."""
    name = field.encode()
    aad = (
        b"citizen-vault/field/v1\x00"
        + CITIZEN.bytes
        + struct.pack(">H", len(name))
        + name
        + slot.encode()
        + struct.pack(">I", version)
        + b"\x01"
    )
    assert aad == field_aad(CITIZEN, field, slot, version)
    header = b"\x01" + slot.encode() + struct.pack(">I", version)
    assert (header + nonce + AESGCM(DEK).encrypt(nonce, plaintext, aad)).hex() == expected


def test_nonces_are_random_and_twelve_bytes() -> None:
    cipher = FieldCipher(CITIZEN, DEK, "P", 1)
    blobs = [cipher.encrypt("email", b"same value") for _ in range(50)]
    nonces = {b[6:18] for b in blobs}
    assert len(nonces) == 50
    assert all(len(b) == 6 + 12 + len(b"same value") + 16 for b in blobs)
    many = cipher.encrypt_many({"a": b"x", "b": b"x", "c": b"x"})
    assert len({v[6:18] for v in many.values()}) == 3


def test_ciphertext_moved_to_another_citizen_is_refused() -> None:
    blob = FieldCipher(CITIZEN, DEK, "P", 1).encrypt("email", b"ada@example.org")
    with pytest.raises(DecryptionFailed):
        FieldCipher(OTHER, DEK, "P", 1).decrypt("email", blob)


def test_ciphertext_moved_to_another_field_is_refused() -> None:
    blob = FieldCipher(CITIZEN, DEK, "P", 1).encrypt("email", b"ada@example.org")
    with pytest.raises(DecryptionFailed):
        FieldCipher(CITIZEN, DEK, "P", 1).decrypt("phone", blob)


def test_wrong_key_version_is_refused_even_with_the_right_key() -> None:
    blob = FieldCipher(CITIZEN, DEK, "P", 1).encrypt("email", b"ada@example.org")
    with pytest.raises(DecryptionFailed):
        FieldCipher(CITIZEN, DEK, "P", 2).decrypt("email", blob)
    relabelled = blob[:2] + struct.pack(">I", 2) + blob[6:]
    with pytest.raises(DecryptionFailed):
        FieldCipher(CITIZEN, DEK, "P", 2).decrypt("email", relabelled)


def test_wrong_slot_is_refused() -> None:
    blob = FieldCipher(CITIZEN, DEK, "P", 1).encrypt("email", b"ada@example.org")
    with pytest.raises(DecryptionFailed):
        FieldCipher(CITIZEN, DEK, "H", 1).decrypt("email", b"\x01H" + blob[2:])


@pytest.mark.parametrize("position", [0, 1, 5, 6, 17, 18, -16, -1])
def test_any_flipped_byte_is_refused(position: int) -> None:
    cipher = FieldCipher(CITIZEN, DEK, "P", 1)
    blob = bytearray(cipher.encrypt("income", b"52000"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionFailed):
        cipher.decrypt("income", bytes(blob))


@pytest.mark.parametrize("length", [0, 1, 5, 17, 6 + 12 + 15])
def test_truncated_ciphertext_is_refused(length: int) -> None:
    cipher = FieldCipher(CITIZEN, DEK, "P", 1)
    blob = cipher.encrypt("income", b"52000")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt("income", blob[:length])


def test_unknown_format_version_is_refused() -> None:
    blob = FieldCipher(CITIZEN, DEK, "P", 1).encrypt("income", b"52000")
    with pytest.raises(DecryptionFailed):
        read_header(b"\x02" + blob[1:])


def test_record_round_trip_and_malformed_records() -> None:
    sealed = {"email": b"\x01" * 40, "given_name": b"\x02" * 33}
    record = pack_record(sealed)
    assert unpack_record(record) == sealed
    for broken in (record[:-1], record + b"\x05", b"\x05abc"):
        with pytest.raises(DecryptionFailed):
            unpack_record(broken)
