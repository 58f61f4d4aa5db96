"""Field encryption recipe: the only place a citizen's field value meets a cipher.

Ciphertext format v1 (documented in docs/crypto.md, frozen by tests/vault/test_fieldcipher_vectors.py):

    offset  size  content
    0       1     format version (0x01)
    1       1     key slot: "P" profile DEK, "H" legal-hold DEK
    2       4     DEK version, unsigned big-endian
    6       12    random nonce
    18      n+16  AES-256-GCM ciphertext and tag

A profile's fields are stored together in one record, each value sealed on its own:

    record := ( u8 len(field) || field (UTF-8) || u32 len(ciphertext) || ciphertext )*

Associated data binds the ciphertext to where it belongs, so a value copied to another citizen,
another field, another key slot or version does not decrypt:

    "citizen-vault/field/v1" 0x00 || citizen UUID (16 bytes) || u16 len(field) || field (UTF-8)
    || slot || u32 DEK version || format version
"""

from __future__ import annotations

import functools
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
    return _AAD_PREFIX + citizen.bytes + _aad_tail(field, slot, dek_version, fmt)


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

    __slots__ = ("_aad_head", "_aead", "_header", "citizen", "dek_version", "slot")

    def __init__(self, citizen: uuid.UUID, dek: bytes, slot: str, dek_version: int) -> None:
        self._aead = Aead(dek)
        self.citizen = citizen
        self.slot = slot
        self.dek_version = dek_version
        self._header = _HEADER.pack(FORMAT_V1, slot.encode("ascii"), dek_version)
        self._aad_head = _AAD_PREFIX + citizen.bytes

    def encrypt(self, field: str, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """Seal one field value; ``nonce`` only for known-answer tests."""
        aad = self._aad_head + _aad_tail(field, self.slot, self.dek_version, FORMAT_V1)
        return self._header + self._aead.seal(plaintext, aad, nonce)

    def encrypt_many(self, plaintexts: dict[str, bytes]) -> dict[str, bytes]:
        """Seal several fields at once (one call to the random source for all nonces)."""
        head, slot, version = self._aad_head, self.slot, self.dek_version
        names = list(plaintexts)
        sealed = self._aead.seal_many([(plaintexts[n], head + _aad_tail(n, slot, version, FORMAT_V1)) for n in names])
        return {n: self._header + s for n, s in zip(names, sealed, strict=True)}

    def decrypt(self, field: str, blob: bytes) -> bytes:
        """Open one field value; every failure is DecryptionFailed."""
        header = read_header(blob)
        if header.slot != self.slot or header.dek_version != self.dek_version:
            raise DecryptionFailed("ciphertext names another key")
        aad = self._aad_head + _aad_tail(field, header.slot, header.dek_version, header.format)
        return self._aead.open(blob[_HEADER.size :], aad)


@functools.lru_cache(maxsize=4096)
def _aad_tail(field: str, slot: str, dek_version: int, fmt: int) -> bytes:
    name = field.encode("utf-8")
    return _U16.pack(len(name)) + name + _TAIL.pack(slot.encode("ascii"), dek_version, fmt)


_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")


def pack_record(sealed: dict[str, bytes]) -> bytes:
    """Serialise field name -> ciphertext into one stored record (names sorted)."""
    parts = []
    for name in sorted(sealed):
        blob = sealed[name]
        parts.append(_name_prefix(name) + _U32.pack(len(blob)) + blob)
    return b"".join(parts)


@functools.lru_cache(maxsize=4096)
def _name_prefix(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("field name too long")
    return _U8.pack(len(raw)) + raw


def unpack_record(record: bytes) -> dict[str, bytes]:
    """Inverse of :meth:`pack_record`; a malformed record is DecryptionFailed."""
    out: dict[str, bytes] = {}
    pos = 0
    try:
        while pos < len(record):
            (n,) = _U8.unpack_from(record, pos)
            name = record[pos + 1 : pos + 1 + n].decode("utf-8")
            pos += 1 + n
            (m,) = _U32.unpack_from(record, pos)
            blob = record[pos + 4 : pos + 4 + m]
            if len(blob) != m or name in out:
                raise DecryptionFailed("malformed record")
            out[name] = blob
            pos += 4 + m
    except (struct.error, UnicodeDecodeError):
        raise DecryptionFailed("malformed record") from None
    return out
