"""Asymmetric signing keys (ES256, ECDSA P-256) for the vault's tokens, receipts and checkpoints.

Kept in their own secrets file (``signing-keys.json``, mode 0600, sealed under the master secret
like the keyring). Versioned by key id: one active key signs; older keys keep verifying until
retired, so tokens issued just before a rollover stay valid until they expire.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keys import sealed
from keys.errors import KeyringError, UnknownKeyVersion

SIGNING_FORMAT = "citizen-vault-signing-keys/1"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKey:
    """One signing key: id, PEM of the private key (only for the active one), public JWK."""

    kid: str
    state: str  # active | verify-only
    created_at: datetime
    private_pem: bytes | None
    public_jwk: dict[str, str]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key(now: datetime) -> dict[str, Any]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "kid": f"{now:%Y%m%d}-{secrets.token_hex(4)}",
        "state": "active",
        "created_at": now.isoformat(),
        "private_pem": pem.decode(),
    }


def _public_jwk(kid: str, pem: str) -> dict[str, str]:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyringError("signing key is not an ECDSA P-256 key")
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


class SigningKeyring:
    """The vault's signing keys; re-read when another process rotates them."""

    def __init__(self, path: Path, master_secret: bytes | None) -> None:
        self.path = path
        self._secret = master_secret
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, SigningKey] = {}
        self._reload()

    @classmethod
    def open_or_create(
        cls, path: Path, master_secret: bytes | None, scrypt_n: int = sealed.DEFAULT_SCRYPT_N
    ) -> SigningKeyring:
        """Open the signing keys, creating a first key if there is no file yet."""
        if not path.exists():
            inner = {"keys": [_new_key(datetime.now(UTC))]}
            sealed.write_atomically(path, sealed.seal(SIGNING_FORMAT, inner, master_secret, scrypt_n))
        return cls(path, master_secret)

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
            outer = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise KeyringError(f"no signing keys at {self.path}: run `citizen-vault init`") from None
        except (OSError, ValueError):
            raise KeyringError(f"signing keys at {self.path} are unreadable") from None
        if st.st_mode & 0o077:
            raise KeyringError(f"{self.path} is readable by others: chmod 600 it")
        inner, _ = sealed.unseal(SIGNING_FORMAT, outer, self._secret)
        keys = {}
        for k in inner["keys"]:
            pem = k.get("private_pem")
            keys[k["kid"]] = SigningKey(
                k["kid"],
                k["state"],
                datetime.fromisoformat(k["created_at"]),
                pem.encode() if pem else None,
                _public_jwk(k["kid"], pem) if pem else dict(k["public_jwk"]),
            )
        self._keys = keys
        self._stamp = (st.st_mtime_ns, st.st_size)

    def refresh(self) -> None:
        """Re-read the file if another process changed it (cheap: one stat)."""
        st = os.stat(self.path)
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            self._reload()

    def active(self) -> SigningKey:
        """The key that signs."""
        self.refresh()
        for key in self._keys.values():
            if key.state == "active":
                return key
        raise UnknownKeyVersion("no active signing key")

    def public_jwk(self, kid: str) -> dict[str, str]:
        """The public key for ``kid``; UnknownKeyVersion if it is not (or no longer) held."""
        key = self._keys.get(kid)
        if key is None:
            self.refresh()
            key = self._keys.get(kid)
        if key is None:
            raise UnknownKeyVersion("unknown signing key id")
        return key.public_jwk

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document: every key that still verifies."""
        self.refresh()
        return {"keys": [k.public_jwk for k in self._keys.values()]}

    def sign_jws(self, payload: dict[str, Any], typ: str) -> str:
        """A compact ES256 JWS of ``payload`` (receipts, grants, export bundles) under the active key.

        Signing only: verification of anything presented to the vault stays in api/security/tokens.py
        (python-jose, one allow-list). Anyone verifies these with the public JWKS.
        """
        key = self.active()
        if key.private_pem is None:  # pragma: no cover - the active key always has its private half
            raise UnknownKeyVersion("active signing key has no private key")
        private = serialization.load_pem_private_key(key.private_pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover - checked on load
            raise KeyringError("signing key is not an ECDSA key")
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": typ}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        )
        r, s = decode_dss_signature(private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        fd = os.open(self.path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            outer = json.loads(self.path.read_bytes())
            inner, _ = sealed.unseal(SIGNING_FORMAT, outer, self._secret)
            yield inner
            n = int((outer.get("kdf") or {}).get("n", sealed.DEFAULT_SCRYPT_N))
            sealed.write_atomically(self.path, sealed.seal(SIGNING_FORMAT, inner, self._secret, n))
            self._reload()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def rotate(self) -> str:
        """New active key; the previous one keeps verifying until retired. Returns the new kid."""
        with self._locked() as inner:
            for k in inner["keys"]:
                # An old key only verifies: keep its public half, destroy the private one.
                if k.get("private_pem"):
                    k["public_jwk"] = _public_jwk(k["kid"], k.pop("private_pem"))
                k["state"] = "verify-only"
            new = _new_key(datetime.now(UTC))
            inner["keys"].append(new)
        return str(new["kid"])

    def retire(self, kid: str) -> None:
        """Forget a verify-only key: tokens signed with it stop verifying."""
        with self._locked() as inner:
            match = [k for k in inner["keys"] if k["kid"] == kid]
            if not match:
                raise UnknownKeyVersion("unknown signing key id")
            if match[0]["state"] == "active":
                raise ValueError("cannot retire the active signing key")
            inner["keys"] = [k for k in inner["keys"] if k["kid"] != kid]
