"""The one module that touches symmetric primitives: AES-256-GCM, HMAC-SHA256, HKDF, scrypt, Argon2id.

Everything else in the project calls these small recipes. Randomness is a parameter
(``nonce=``) so known-answer tests are deterministic; production callers leave it ``None``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.errors import DecryptionFailed

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def new_key() -> bytes:
    """A fresh 256-bit key from the OS CSPRNG."""
    return os.urandom(KEY_BYTES)


def new_nonce() -> bytes:
    """A fresh 96-bit random nonce."""
    return os.urandom(NONCE_BYTES)


class Aead:
    """AES-256-GCM under one key. Build once per key and reuse: construction costs more than a call."""

    __slots__ = ("_gcm",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._gcm = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
        """Return nonce || ciphertext || tag."""
        if nonce is None:
            nonce = os.urandom(NONCE_BYTES)
        elif len(nonce) != NONCE_BYTES:
            raise ValueError("nonce must be 12 bytes")
        return nonce + self._gcm.encrypt(nonce, plaintext, aad)

    def seal_many(self, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Seal several (plaintext, aad) pairs, drawing all their random nonces in one call."""
        return [nonce + body for nonce, body in self.seal_parts(items)]

    def seal_parts(self, items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """:meth:`seal_many`, each result as (nonce, ciphertext || tag) for the caller to lay out."""
        pool = os.urandom(NONCE_BYTES * len(items))
        encrypt = self._gcm.encrypt
        out = []
        for i, (plaintext, aad) in enumerate(items):
            nonce = pool[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            out.append((nonce, encrypt(nonce, plaintext, aad)))
        return out

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Inverse of :meth:`seal`; any failure is :class:`DecryptionFailed`."""
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("ciphertext too short")
        try:
            return self._gcm.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionFailed("authentication failed") from None

    def open_many(self, items: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
        """:meth:`open` for several (sealed, aad) pairs under this key (bulk reads)."""
        decrypt = self._gcm.decrypt
        out = []
        try:
            for sealed, aad in items:
                if len(sealed) < NONCE_BYTES + TAG_BYTES:
                    raise DecryptionFailed("ciphertext too short")
                out.append(decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad))
        except InvalidTag:
            raise DecryptionFailed("authentication failed") from None
        return out


def hkdf(root: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 with a fixed empty salt: derivation of sub-keys from a uniformly random root."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(root)


def scrypt_key(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """A 256-bit key from a human-held master secret."""
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(secret)


def argon2id_key(passphrase: bytes, salt: bytes, memory_kib: int, iterations: int, lanes: int) -> bytes:
    """A 256-bit key from an operator's passphrase, memory-hard (RFC 9106 Argon2id): backups leave
    the machine, so guessing the passphrase offline must cost memory as well as time."""
    return Argon2id(salt=salt, length=KEY_BYTES, iterations=iterations, lanes=lanes, memory_cost=memory_kib).derive(
        passphrase
    )


class Mac:
    """HMAC-SHA256 under one key, with the keyed state precomputed once."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA256(key, message)."""
        h = self._base.copy()
        h.update(message)
        return h.digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare secrets without a timing side channel."""
    return hmac.compare_digest(a, b)
