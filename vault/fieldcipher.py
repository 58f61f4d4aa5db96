"""Field encryption recipe: the only place a citizen's field value meets a cipher.

Ciphertext format v1 (documented in docs/crypto.md, frozen by tests/vault/test_fieldcipher_vectors.py):

    offset  size  content
    0       1     format version (0x01)
    1       1     key slot: "P" profile DEK, "H" legal-hold DEK, "I" interactions DEK
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keys.aead import NONCE_BYTES, Aead
from keys.errors import DecryptionFailed

FORMAT_V1 = 1
SLOT_PROFILE = "P"
SLOT_HOLD = "H"
SLOT_INTERACTION = "I"  # a citizen's interaction texts (vault/interactions/sealing.py), or one anonymous item's
_SLOTS = {b"P": "P", b"H": "H", b"I": "I"}
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
    slot, version, _ = split(blob)
    return Header(FORMAT_V1, slot, version)


def split(blob: bytes) -> tuple[str, int, bytes]:
    """(key slot, DEK version, nonce||ciphertext||tag) of a v1 ciphertext; DecryptionFailed if unknown."""
    if len(blob) < _HEADER.size:
        raise DecryptionFailed("ciphertext too short")
    fmt, slot, version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_V1 or slot not in _SLOTS:
        raise DecryptionFailed("unknown ciphertext format")
    return _SLOTS[slot], version, blob[_HEADER.size :]


Parsed = tuple[str, str, int, bytes]  # field, slot, DEK version, nonce||ciphertext||tag


def open_parsed(citizen: bytes, deks: Mapping[tuple[bytes, str, int], bytes], fields: Sequence[Parsed]) -> list[bytes]:
    """Open several fields of one citizen (``citizen``: the id's 16 raw bytes), already split, in
    their order; ``deks`` maps (citizen, slot, version) to data keys. Bulk reads: each header is
    parsed once, one cipher per key. Any failure is DecryptionFailed or KeyError."""
    if not fields:
        return []
    head = _AAD_PREFIX + citizen
    _, slot, version, _ = fields[0]
    items = [(body, head + _aad_tail(n, s, v, FORMAT_V1)) for n, s, v, body in fields]
    if all(s == slot and v == version for _, s, v, _ in fields):  # the usual case: one key
        return Aead(deks[(citizen, slot, version)]).open_many(items)
    return [Aead(deks[(citizen, s, v)]).open(*item) for (_, s, v, _), item in zip(fields, items, strict=True)]


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

    def seal_record(self, plaintexts: Mapping[str, bytes]) -> bytes:
        """:func:`pack_record` of :meth:`encrypt_many`, in one pass (bulk imports): the names'
        associated-data tails and record prefixes are worked out once per set of names and key,
        and the record is joined from its pieces without intermediate copies."""
        names = tuple(sorted(plaintexts))
        tails, prefixes = _layout(names, self.slot, self.dek_version)
        head, header = self._aad_head, self._header
        sealed = self._aead.seal_parts([(plaintexts[n], head + t) for n, t in zip(names, tails, strict=True)])
        size, pack = len(header) + NONCE_BYTES, _U32.pack
        parts: list[bytes] = []
        for prefix, (nonce, body) in zip(prefixes, sealed, strict=True):
            parts += (prefix, pack(size + len(body)), header, nonce, body)
        return b"".join(parts)

    def decrypt(self, field: str, blob: bytes) -> bytes:
        """Open one field value; every failure is DecryptionFailed."""
        header = read_header(blob)
        if header.slot != self.slot or header.dek_version != self.dek_version:
            raise DecryptionFailed("ciphertext names another key")
        aad = self._aad_head + _aad_tail(field, header.slot, header.dek_version, header.format)
        return self._aead.open(blob[_HEADER.size :], aad)


@functools.lru_cache(maxsize=256)
def _layout(names: tuple[str, ...], slot: str, dek_version: int) -> tuple[list[bytes], list[bytes]]:
    """Per field name, in order: its associated-data tail and its record prefix."""
    return [_aad_tail(n, slot, dek_version, FORMAT_V1) for n in names], [_name_prefix(n) for n in names]


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
    pos, end = 0, len(record)
    try:
        while pos < end:
            n = record[pos]
            name = record[pos + 1 : pos + 1 + n].decode("utf-8")
            pos += 1 + n
            (m,) = _U32.unpack_from(record, pos)
            pos += 4
            if pos + m > end or name in out:
                raise DecryptionFailed("malformed record")
            out[name] = record[pos : pos + m]
            pos += m
    except (struct.error, UnicodeDecodeError, IndexError):
        raise DecryptionFailed("malformed record") from None
    return out


def unpack_split(record: bytes, only: Mapping[bytes, str]) -> list[Parsed]:
    """The fields of a stored record named in ``only`` (UTF-8 name -> name), each split as by
    :func:`split`, in one pass (bulk reads). The record's structure is checked whole (names strictly
    ascending, as :func:`pack_record` writes them; lengths within the record); a malformed record or
    ciphertext is DecryptionFailed. Names not asked for are compared as bytes, never decoded."""
    out: list[Parsed] = []
    pos, end, last = 0, len(record), b""
    length, header = _U32.unpack_from, _HEADER.unpack_from
    try:
        while pos < end:
            stop = pos + 1 + record[pos]
            key = record[pos + 1 : stop]
            if key <= last:
                raise DecryptionFailed("malformed record")
            last = key
            (m,) = length(record, stop)
            pos = stop + 4
            following = pos + m
            if following > end:
                raise DecryptionFailed("malformed record")
            name = only.get(key)
            if name is not None:
                if m < _HEADER.size:
                    raise DecryptionFailed("ciphertext too short")
                fmt, slot, version = header(record, pos)
                if fmt != FORMAT_V1 or slot not in _SLOTS:
                    raise DecryptionFailed("unknown ciphertext format")
                out.append((name, _SLOTS[slot], version, record[pos + _HEADER.size : following]))
            pos = following
    except (struct.error, IndexError):
        raise DecryptionFailed("malformed record") from None
    return out
