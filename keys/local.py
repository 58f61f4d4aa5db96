"""The embedded default KEK provider: a keyring file in the data directory.

The file holds versioned KEKs and the blind-index root key. It is created with mode 0600 and
refused if anyone but the owner can read it. When a master secret is given, the whole keyring is
sealed with AES-256-GCM under a key derived from it by scrypt; a wrong secret fails the tag check
and nothing is read. Without a master secret the keys sit in the file as they are: acceptable only
in development, and the caller is expected to warn loudly (see vault.runtime).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keys import aead, sealed
from keys.errors import KeyringError, UnknownKeyVersion
from keys.provider import KekInfo, KekState, SoftwareKeyProvider

KEYRING_FORMAT = "citizen-vault-keyring/1"


class LocalKeyProvider(SoftwareKeyProvider):
    """KEKs in a keyring file; re-read whenever another process changes it."""

    name = "local"

    def __init__(self, path: Path, master_secret: bytes | None) -> None:
        super().__init__()
        self.path = path
        self._secret = master_secret
        self._stamp: tuple[int, int] | None = None
        self._raw: dict[int, bytes] = {}
        self.protected = False
        self._reload()

    # -- creation ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: Path, master_secret: bytes | None, scrypt_n: int = sealed.DEFAULT_SCRYPT_N
    ) -> LocalKeyProvider:
        """Write a new keyring with KEK version 1; refuses to overwrite an existing one."""
        if path.exists():
            raise KeyringError(f"keyring already exists at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).isoformat()
        inner = {
            "keks": [{"version": 1, "state": "active", "created_at": now, "key": sealed.b64(aead.new_key())}],
            "index_root": sealed.b64(aead.new_key()),
        }
        sealed.write_atomically(path, sealed.seal(KEYRING_FORMAT, inner, master_secret, scrypt_n))
        return cls(path, master_secret)

    # -- reading ----------------------------------------------------------------------------
    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise KeyringError(
                f"keyring not found at {self.path}; run `citizen-vault init` (or restore the keyring)"
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(
                f"keyring {self.path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
            )
        try:
            outer = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise KeyringError(f"keyring {self.path} is unreadable: {exc.__class__.__name__}") from None
        inner, self.protected = sealed.unseal(KEYRING_FORMAT, outer, self._secret)
        try:
            keks = {int(k["version"]): sealed.unb64(k["key"]) for k in inner["keks"] if k.get("key")}
            infos = [
                KekInfo(int(k["version"]), _state(k["state"]), datetime.fromisoformat(k["created_at"]))
                for k in inner["keks"]
            ]
            index_root = sealed.unb64(inner["index_root"])
        except (KeyError, TypeError, ValueError):
            raise KeyringError(f"keyring {self.path} is malformed") from None
        self._raw = keks
        self._load(keks, infos, index_root)
        self._stamp = (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise KeyringError(f"keyring disappeared from {self.path}") from None
        if (st.st_mtime_ns, st.st_size) == self._stamp:
            return False
        self._reload()
        return True

    # -- changing ---------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Serialise writers across processes, hand out the current inner keyring, write it back."""
        lock_path = self.path.with_suffix(".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            outer = json.loads(self.path.read_bytes())
            inner, _ = sealed.unseal(KEYRING_FORMAT, outer, self._secret)
            yield inner
            kdf = outer.get("kdf") or {}
            sealed.write_atomically(
                self.path, sealed.seal(KEYRING_FORMAT, inner, self._secret, int(kdf.get("n", sealed.DEFAULT_SCRYPT_N)))
            )
            self._reload()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def create_version(self) -> int:
        with self._locked() as inner:
            version = max(int(k["version"]) for k in inner["keks"]) + 1
            for k in inner["keks"]:
                if k["state"] == "active":
                    k["state"] = "decrypt-only"
            inner["keks"].append(
                {
                    "version": version,
                    "state": "active",
                    "created_at": datetime.now(UTC).isoformat(),
                    "key": sealed.b64(aead.new_key()),
                }
            )
        return version

    def retire_version(self, version: int) -> None:
        with self._locked() as inner:
            match = [k for k in inner["keks"] if int(k["version"]) == version]
            if not match or match[0]["state"] == "retired":
                raise UnknownKeyVersion(f"KEK version {version} is not held")
            if match[0]["state"] == "active":
                raise ValueError("cannot retire the active KEK version")
            match[0]["state"] = "retired"
            match[0].pop("key", None)

    def describe(self) -> dict[str, str]:
        return {
            "provider": self.name,
            "keyring": str(self.path),
            "protection": "master secret (scrypt + AES-256-GCM)" if self.protected else "NONE (development)",
        }


def _state(value: str) -> KekState:
    if value == "active":
        return "active"
    if value == "decrypt-only":
        return "decrypt-only"
    if value == "retired":
        return "retired"
    raise ValueError(value)
