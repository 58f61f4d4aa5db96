"""Field encryption recipe: the only place a citizen's field value meets a cipher.

Ciphertext format v1 (documented in docs/crypto.md, frozen by tests/vault/test_fieldcipher_vectors.py):

    offset  size  content
    0       1     format version (0x01)
    1       1     key slot: "P" profile DEK, "H" legal-hold DEK
    2       4     DEK version, unsigned big-endian
    6       12    random nonce
    18      n+16  AES-256-GCM ciphertext and tag

Associated data binds the ciphertext to where it belongs, so a value copied to another citizen,
another field, another key slot or version does not decrypt:

    "citizen-vault/field/v1" 0x00 || citizen UUID (16 bytes) || u16 len(field) || field (UTF-8)
    || slot || u32 DEK version || format version
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from keys.aead import Aead
from keys.errors import DecryptionFailed

FORMAT_V1 = 1
SLOT_PROFILE = "P"
SLOT_HOLD = "H"
_HEADER = struct.Struct(">BcI")
_AAD_PREFIX = b"citizen-vault/field/v1\x00"
_U16 = struct.Struct(">H")
_TAIL = struct.Struct(">cIB")


@dataclass(frozen=True)
class Header:
    """What a ciphertext says about the key it needs."""

    format: int
    slot: str
    dek_version: int


def field_aad(citizen: uuid.UUID, field: str, slot: str, dek_version: int, fmt: int = FORMAT_V1) -> bytes:
    """Associated data for one field value."""
    name = field.encode("utf-8")
    return _AAD_PREFIX + citizen.bytes + _U16.pack(len(name)) + name + _TAIL.pack(slot.encode("ascii"), dek_version, fmt)


def read_header(blob: bytes) -> Header:
    """Parse the header; DecryptionFailed if it is not a known format."""
    if len(blob) < _HEADER.size:
        raise DecryptionFailed("ciphertext too short")
    fmt, slot, version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_V1 or slot not in (b"P", b"H"):
        raise DecryptionFailed("unknown ciphertext format")
    return Header(fmt, slot.decode("ascii"), version)


class FieldCipher:
    """Encrypts and decrypts the fields of one citizen under one DEK (build once per citizen)."""

    __slots__ = ("_aead", "citizen", "slot", "dek_version")

    def __init__(self, citizen: uuid.UUID, dek: bytes, slot: str, dek_version: int) -> None:
        self._aead = Aead(dek)
        self.citizen = citizen
        self.slot = slot
        self.dek_version = dek_version

    def encrypt(self, field: str, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """Seal one field value; ``nonce`` only for known-answer tests."""
        header = _HEADER.pack(FORMAT_V1, self.slot.encode("ascii"), self.dek_version)
        aad = field_aad(self.citizen, field, self.slot, self.dek_version)
        return header + self._aead.seal(plaintext, aad, nonce)

    def decrypt(self, field: str, blob: bytes) -> bytes:
        """Open one field value; every failure is DecryptionFailed."""
        header = read_header(blob)
        if header.slot != self.slot or header.dek_version != self.dek_version:
            raise DecryptionFailed("ciphertext names another key")
        aad = field_aad(self.citizen, field, header.slot, header.dek_version, header.format)
        return self._aead.open(blob[_HEADER.size :], aad)
