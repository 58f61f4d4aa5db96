"""Ed25519 keys that sign audit checkpoints.

Kept in their own sealed secrets file (``audit-signing-keys.json``, mode 0600, under the master
secret like the keyring), separate from the token keys: a checkpoint signature must stay
verifiable for years, long after token keys have rolled over, so audit keys are never retired
here, only superseded. Verification needs nothing but the public key (:func:`verify`), so an
external party can check an exported log without access to the vault.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keys import sealed
from keys.errors import KeyringError

AUDIT_SIGNING_FORMAT = "citizen-vault-audit-signing-keys/1"


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _new_key() -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    now = datetime.now(UTC)
    return {
        "kid": f"audit-{now:%Y%m%d}-{secrets.token_hex(4)}",
        "created_at": now.isoformat(),
        "private": sealed.b64(raw),
        "public": base64.b64encode(_raw_public(private)).decode(),
    }


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` under the raw public key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class AuditSigner:
    """The active checkpoint-signing key and every public key ever used (by key id)."""

    kid: str
    _private: Ed25519PrivateKey
    public_keys: dict[str, bytes]

    @classmethod
    def open(cls, path: Path, master_secret: bytes | None, *, create: bool, scrypt_n: int) -> AuditSigner:
        """Load the keys (creating a first one when ``create`` and there is no file)."""
        if not path.exists():
            if not create:
                raise KeyringError(f"no audit signing key at {path}: run `citizen-vault init`")
            inner = {"keys": [_new_key()]}
            sealed.write_atomically(path, sealed.seal(AUDIT_SIGNING_FORMAT, inner, master_secret, scrypt_n))
        if path.stat().st_mode & 0o077:
            raise KeyringError(f"{path} is readable by others: chmod 600 it")
        try:
            outer = json.loads(path.read_bytes())
        except (OSError, ValueError):
            raise KeyringError(f"audit signing keys at {path} are unreadable") from None
        inner, _ = sealed.unseal(AUDIT_SIGNING_FORMAT, outer, master_secret)
        keys = inner["keys"]
        active = keys[-1]
        private = Ed25519PrivateKey.from_private_bytes(sealed.unb64(active["private"]))
        publics = {k["kid"]: base64.b64decode(k["public"]) for k in keys}
        if publics[active["kid"]] != _raw_public(private):
            raise KeyringError("audit signing key file is inconsistent")
        return cls(active["kid"], private, publics)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` with the active key."""
        return self._private.sign(message)

    def public_keys_b64(self) -> dict[str, str]:
        """Public keys, base64 (what an export carries and an external verifier needs)."""
        return {kid: base64.b64encode(raw).decode() for kid, raw in self.public_keys.items()}
