"""An in-memory KEK provider for unit tests: real AES-GCM, nothing persisted."""

from __future__ import annotations

from datetime import UTC, datetime

from keys import aead
from keys.errors import UnknownKeyVersion
from keys.provider import KekInfo, SoftwareKeyProvider


class InMemoryKeyProvider(SoftwareKeyProvider):
    """Same behaviour as the local keyring, minus the file."""

    name = "memory"

    def __init__(self, index_root: bytes | None = None) -> None:
        super().__init__()
        self._raw: dict[int, bytes] = {}
        self._index_root = index_root or aead.new_key()
        self.create_version()

    def create_version(self) -> int:
        version = max(self._raw, default=0) + 1
        now = datetime.now(UTC)
        infos = [
            KekInfo(i.version, "decrypt-only" if i.state == "active" else i.state, i.created_at)
            for i in self._infos.values()
        ]
        infos.append(KekInfo(version, "active", now))
        self._raw[version] = aead.new_key()
        self._load(dict(self._raw), infos, self._index_root)
        return version

    def retire_version(self, version: int) -> None:
        info = self._infos.get(version)
        if info is None or info.state == "retired":
            raise UnknownKeyVersion(f"KEK version {version} is not held")
        if info.state == "active":
            raise ValueError("cannot retire the active KEK version")
        del self._raw[version]
        infos = [
            KekInfo(i.version, "retired", i.created_at) if i.version == version else i for i in self._infos.values()
        ]
        self._load(dict(self._raw), infos, self._index_root)
