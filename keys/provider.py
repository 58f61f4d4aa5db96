"""The KEK provider interface and the shared software implementation.

A KEK (key-encryption key) wraps data keys. Providers hold versioned KEKs: exactly one version is
active (used to wrap); older versions stay usable to unwrap until they are retired, which destroys
them. A provider also derives blind-index keys, separate from every encryption key.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from keys import aead
from keys.errors import DecryptionFailed, UnknownKeyVersion

KekState = Literal["active", "decrypt-only", "retired"]

WRAP_FORMAT = 1
_WRAP_HEADER = struct.Struct(">BI")  # format version, KEK version
INDEX_INFO_PREFIX = b"citizen-vault/blind-index/v1/"


@dataclass(frozen=True)
class KekInfo:
    """Public facts about one KEK version (never the key itself)."""

    version: int
    state: KekState
    created_at: datetime


class KeyProvider(ABC):
    """Holds KEKs and wraps/unwraps data keys with them."""

    name: str
    # True when wrapping needs nothing but this process's memory, so a forked child (a bulk import
    # worker) may wrap with the copy it inherited. False for a KEK that lives elsewhere (an HSM: it
    # never leaves the device, and a PKCS#11 session does not survive fork): wrap in the parent.
    wraps_in_forked_workers: bool = False

    @abstractmethod
    def active_version(self) -> int:
        """The KEK version new wraps use."""

    @abstractmethod
    def versions(self) -> list[KekInfo]:
        """Every KEK version this provider knows, oldest first."""

    @abstractmethod
    def wrap(self, dek: bytes, aad: bytes) -> tuple[int, bytes]:
        """Wrap a data key under the active KEK; returns (KEK version, wrapped blob)."""

    def wrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, bytes]]:
        """Wrap several (dek, aad) pairs; providers may do this faster than one by one."""
        return [self.wrap(dek, aad) for dek, aad in items]

    @abstractmethod
    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Unwrap a blob made by :meth:`wrap`; raises UnknownKeyVersion or DecryptionFailed."""

    @abstractmethod
    def create_version(self) -> int:
        """Create a new KEK version and make it active; returns the version."""

    @abstractmethod
    def retire_version(self, version: int) -> None:
        """Destroy a non-active KEK version: anything still wrapped under it becomes unreadable."""

    @abstractmethod
    def index_key(self, label: str) -> bytes:
        """A 256-bit blind-index key for ``label`` (a field name), stable across KEK rotation."""

    def describe(self) -> dict[str, str]:
        """Human-readable facts for `keys status` (no secrets)."""
        return {"provider": self.name}


def pack_wrapped(version: int, sealed: bytes) -> bytes:
    """Self-describing wrapped-key blob: format byte, KEK version, then nonce||ciphertext||tag."""
    return _WRAP_HEADER.pack(WRAP_FORMAT, version) + sealed


def unpack_wrapped(version: int, blob: bytes) -> bytes:
    """Check the header of a wrapped-key blob against the expected KEK version."""
    if len(blob) < _WRAP_HEADER.size:
        raise DecryptionFailed("wrapped key too short")
    fmt, blob_version = _WRAP_HEADER.unpack_from(blob)
    if fmt != WRAP_FORMAT:
        raise DecryptionFailed("unknown wrapped-key format")
    if blob_version != version:
        raise DecryptionFailed("wrapped key names another KEK version")
    return blob[_WRAP_HEADER.size :]


class SoftwareKeyProvider(KeyProvider):
    """KEKs held in process memory (local keyring, in-memory tests): AES-256-GCM key wrap."""

    wraps_in_forked_workers = True

    def __init__(self) -> None:
        self._keks: dict[int, aead.Aead] = {}
        self._infos: dict[int, KekInfo] = {}
        self._index_root = b""

    def _load(self, keks: dict[int, bytes], infos: list[KekInfo], index_root: bytes) -> None:
        self._keks = {v: aead.Aead(k) for v, k in keks.items()}
        self._infos = {i.version: i for i in infos}
        self._index_root = index_root

    def _refresh(self) -> bool:
        """Reload from backing storage if it changed; returns True when something was reloaded."""
        return False

    def active_version(self) -> int:
        self._refresh()
        active = [i.version for i in self._infos.values() if i.state == "active"]
        if len(active) != 1:
            raise UnknownKeyVersion("no single active KEK version")
        return active[0]

    def versions(self) -> list[KekInfo]:
        self._refresh()
        return sorted(self._infos.values(), key=lambda i: i.version)

    def wrap(self, dek: bytes, aad: bytes) -> tuple[int, bytes]:
        version = self.active_version()
        return version, pack_wrapped(version, self._keks[version].seal(dek, aad))

    def wrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, bytes]]:
        version = self.active_version()
        sealed = self._keks[version].seal_many(list(items))  # one draw from the OS for all nonces
        return [(version, pack_wrapped(version, s)) for s in sealed]

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        kek = self._keks.get(version)
        if kek is None and self._refresh():
            kek = self._keks.get(version)
        if kek is None:
            raise UnknownKeyVersion(f"KEK version {version} is not held by this provider")
        return kek.open(unpack_wrapped(version, wrapped), aad)

    def index_key(self, label: str) -> bytes:
        return aead.hkdf(self._index_root, INDEX_INFO_PREFIX + label.encode())
