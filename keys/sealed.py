"""Small JSON files holding secrets (keyring, signing keys): mode 0600, atomic writes, and
optionally sealed with AES-256-GCM under a key derived from the master secret by scrypt."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from keys import aead
from keys.errors import DecryptionFailed, KeyringError

DEFAULT_SCRYPT_N = 2**15


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    """Inverse of :func:`b64`, strict."""
    return base64.b64decode(text, validate=True)


def seal(fmt: str, inner: dict[str, Any], secret: bytes | None, scrypt_n: int) -> dict[str, Any]:
    """The outer JSON of a secrets file: the inner document as is, or sealed under the master secret."""
    body = json.dumps(inner, sort_keys=True).encode()
    if secret is None:
        return {"format": fmt, "protected": False, "keyring": inner}
    salt = os.urandom(16)
    key = aead.scrypt_key(secret, salt, n=scrypt_n, r=8, p=1)
    return {
        "format": fmt,
        "protected": True,
        "kdf": {"name": "scrypt", "n": scrypt_n, "r": 8, "p": 1, "salt": b64(salt)},
        "sealed": b64(aead.Aead(key).seal(body, fmt.encode())),
    }


def unseal(fmt: str, outer: dict[str, Any], secret: bytes | None) -> tuple[dict[str, Any], bool]:
    """The inner document of a secrets file and whether it was sealed; refuses a wrong or missing secret."""
    if outer.get("format") != fmt:
        raise KeyringError(f"not a {fmt} file")
    if not outer.get("protected"):
        if secret is not None:
            raise KeyringError(
                "a master secret is set but the keyring is not protected by one; refusing to guess "
                "(unset CITIZEN_VAULT_MASTER_SECRET, or create the keyring with it)"
            )
        return dict(outer["keyring"]), False
    if secret is None:
        raise KeyringError("the keyring is protected: set CITIZEN_VAULT_MASTER_SECRET")
    kdf = outer["kdf"]
    key = aead.scrypt_key(secret, unb64(kdf["salt"]), n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
    try:
        body = aead.Aead(key).open(unb64(outer["sealed"]), fmt.encode())
    except DecryptionFailed:
        raise KeyringError("wrong master secret (or the keyring was altered)") from None
    return dict(json.loads(body)), True


def write_atomically(path: Path, outer: dict[str, Any]) -> None:
    """Write JSON via a 0600 temp file, fsync and rename, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(outer, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
