"""KEKs in a PKCS#11 HSM (SoftHSM2 in tests): generated on the token, they never leave it.

Each KEK version is an AES-256 token object ``citizen-vault-kek-v{N}``: private, sensitive,
non-extractable, encrypt/decrypt only. The highest version on the token is the active one, so
there is no separate pointer to keep consistent across processes. DEKs are wrapped by CKM_AES_GCM
inside the HSM (random 96-bit IV, the caller's AAD, 128-bit tag). Blind-index keys are HMAC-SHA256
values computed inside the HSM under a non-extractable generic secret, ``citizen-vault-index-root``.

PKCS#11 login belongs to the process, not to a session: a second C_Login fails with
CKR_USER_ALREADY_LOGGED_IN whatever the PIN, and closing a logged-in session logs all sessions out.
So a process-wide registry holds one logged-in session per token, and each provider works in its
own unauthenticated session, which inherits the login.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pkcs11
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import DecryptMixin, EncryptMixin, Object, Session, SignMixin, Token

from keys.errors import DecryptionFailed, KeyringError, ProviderError, UnknownKeyVersion
from keys.provider import INDEX_INFO_PREFIX, KekInfo, KeyProvider, pack_wrapped, unpack_wrapped

KEK_LABEL_PREFIX = "citizen-vault-kek-v"
INDEX_ROOT_LABEL = "citizen-vault-index-root"
_KEK_LABEL = re.compile(re.escape(KEK_LABEL_PREFIX) + r"([1-9][0-9]{0,9})")
_IV_BYTES = 12  # random 96-bit IVs: safe up to 2^32 wraps per KEK, far beyond any KEK's life
_TAG_BITS = 128
_GCM = Mechanism.AES_GCM
_RESCAN_SECONDS = 1.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY_ID = struct.Struct(">Q8s")
# SoftHSM reports a failed GCM tag check as CKR_GENERAL_ERROR; the spec allows the other two.
_BAD_TAG = (p11.GeneralError, p11.EncryptedDataInvalid, p11.EncryptedDataLenRange)
_STALE = (p11.ObjectHandleInvalid, p11.KeyHandleInvalid)


@dataclass(frozen=True)
class _Kek:
    version: int
    key_id: bytes
    key: Object
    created_at: datetime


# (module, token serial) -> (the logged-in session, held open for the process because closing it
# would log everyone out; a keyed digest of the PIN that logged in, never the PIN itself)
_logins: dict[tuple[str, bytes], tuple[Session, bytes]] = {}
_logins_lock = threading.Lock()
_PIN_MAC_KEY = os.urandom(32)
_LOGIN_ERRORS: dict[type[Exception], str] = {
    p11.PinIncorrect: "wrong PIN",
    p11.PinInvalid: "wrong PIN",
    p11.PinLenRange: "wrong PIN",
    p11.PinLocked: "the user PIN is locked",
    p11.UserAlreadyLoggedIn: "already logged in by other code in this process, so the PIN cannot be checked",
}


def reinitialize(module_path: Path) -> None:
    """Finalize and initialize a loaded module again, so it re-reads its configuration and tokens.

    SoftHSM reads SOFTHSM2_CONF and token labels only at C_Initialize: a token made after that is
    invisible until this runs. It kills every open provider of the module (for tests and tooling).
    """
    module = str(module_path)
    with _logins_lock:
        for key in [k for k in _logins if k[0] == module]:
            del _logins[key]
        try:
            pkcs11.lib(module).reinitialize()
        except p11.PKCS11Error as exc:
            raise KeyringError(f"cannot re-initialise PKCS#11 module {module}: {exc}") from None


def _pin_mac(pin: str) -> bytes:
    return hmac.new(_PIN_MAC_KEY, pin.encode(), hashlib.sha256).digest()


def _log_in(module: str, token: Token, pin: str) -> None:
    """Make sure this process is logged in to ``token`` with ``pin``, checking the PIN either way."""
    key = (module, token.serial)
    with _logins_lock:
        known = _logins.get(key)
        if known is not None:
            # The token cannot re-check a PIN while logged in: compare with the one that logged in.
            if not hmac.compare_digest(known[1], _pin_mac(pin)):
                raise KeyringError(f"HSM token {token.label!r}: wrong PIN")
            return
        try:
            # On a failed C_Login python-pkcs11 leaves the just-opened session open: one leaked handle.
            session = token.open(user_pin=pin)
        except p11.PKCS11Error as exc:
            why = _LOGIN_ERRORS.get(type(exc), f"cannot log in ({type(exc).__name__})")
            raise KeyringError(f"HSM token {token.label!r}: {why}") from None
        _logins[key] = (session, _pin_mac(pin))


@contextmanager
def _hsm(what: str) -> Iterator[None]:
    """Turn any python-pkcs11 failure into ProviderError: callers never see pkcs11 types."""
    try:
        yield
    except p11.PKCS11Error as exc:
        raise ProviderError(f"HSM failed to {what}: {type(exc).__name__}") from None


def _as_bytes(value: object) -> bytes:
    # encrypt/decrypt/sign return an iterator only for iterator input, which we never pass.
    if not isinstance(value, bytes):
        raise ProviderError("HSM returned an unexpected result type")
    return value


def _new_key_id() -> bytes:
    # CKA_ID = creation time (µs, UTC) + random: python-pkcs11 cannot read back CKA_START_DATE from
    # SoftHSM (CKR_GENERAL_ERROR), and this also orders same-version duplicates oldest first.
    return _KEY_ID.pack(time.time_ns() // 1000, os.urandom(8))


def _created_at(key_id: bytes) -> datetime:
    micros = _KEY_ID.unpack(key_id)[0] if len(key_id) == _KEY_ID.size else 0
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return _EPOCH  # an id set by other tooling: creation time unknown


class Pkcs11KeyProvider(KeyProvider):
    """Versioned KEKs and the blind-index root, held as non-extractable objects on an HSM token."""

    name = "pkcs11"
    # The KEK never leaves the token and a session does not survive fork: import workers hand their
    # fresh data keys to the parent process, which wraps them here.
    wraps_in_forked_workers = False

    def __init__(self, module_path: Path, token_label: str, pin: str, create: bool = False) -> None:
        """Open ``token_label`` in ``module_path``; with ``create``, add any missing KEK or index root."""
        self.module_path = module_path
        self.token_label = token_label
        self._lock = threading.RLock()
        self._keks: dict[int, list[_Kek]] = {}
        self._scanned_at = 0.0
        self._index_keys: dict[str, bytes] = {}
        module = str(module_path)
        try:
            lib = pkcs11.lib(module)
            token = lib.get_token(token_label=token_label)
        except p11.NoSuchToken:
            raise KeyringError(
                f"no HSM token labelled {token_label!r} in {module}; initialise one first "
                "(SoftHSM: softhsm2-util --init-token --free --label ...)"
            ) from None
        except p11.PKCS11Error as exc:
            raise KeyringError(f"cannot use PKCS#11 module {module}: {exc}") from None
        _log_in(module, token, pin)
        with _hsm("open a session"):
            self._session = token.open(rw=True)
        try:
            self._index_root = self._setup(create)
        except BaseException:
            self.close()
            raise

    def _setup(self, create: bool) -> Object:
        with self._lock, _hsm("read the token"):
            roots = self._find(KeyType.GENERIC_SECRET, INDEX_ROOT_LABEL)
            self._scan()
            if len(roots) > 1:
                raise KeyringError(f"HSM token {self.token_label!r} holds {len(roots)} index roots; keep exactly one")
            if not create and (not roots or not self._keks):
                raise KeyringError(f"HSM token {self.token_label!r} lacks citizen-vault keys: run `citizen-vault init`")
            if not roots:
                if self._keks:
                    # A new root would silently orphan every existing blind index; we create it first,
                    # so KEKs without a root mean the root was deleted: refuse rather than guess.
                    raise KeyringError(f"HSM token {self.token_label!r} has KEKs but lost its index root")
                roots = [self._generate(KeyType.GENERIC_SECRET, INDEX_ROOT_LABEL, MechanismFlag.SIGN)]
            if not self._keks:
                self._generate(KeyType.AES, f"{KEK_LABEL_PREFIX}1", MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
                self._scan()
            return roots[0]

    # -- token access (caller holds the lock) ------------------------------------------------
    def _find(self, key_type: KeyType, label: str | None = None) -> list[Object]:
        """Secret keys of ``key_type`` (and ``label``), refusing any that could leave the HSM."""
        query: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: key_type}
        if label is not None:
            query[Attribute.LABEL] = label
        found = []
        for obj in list(self._session.get_objects(query)):  # finish the search before other calls
            attrs = obj.get_attributes([Attribute.LABEL, Attribute.SENSITIVE, Attribute.EXTRACTABLE])
            name = str(attrs[Attribute.LABEL])
            if name != INDEX_ROOT_LABEL and not _KEK_LABEL.fullmatch(name):
                continue
            if not attrs[Attribute.SENSITIVE] or attrs[Attribute.EXTRACTABLE]:
                raise ProviderError(f"HSM key {name!r} is extractable or not sensitive; refusing to use it")
            found.append(obj)
        return found

    def _scan(self) -> None:
        """Reload the KEK versions from the token (another process may have rotated or retired)."""
        keks: dict[int, list[_Kek]] = {}
        for obj in self._find(KeyType.AES):
            attrs = obj.get_attributes([Attribute.LABEL, Attribute.ID])
            match = _KEK_LABEL.fullmatch(str(attrs[Attribute.LABEL]))
            if match is None:
                continue
            version, key_id = int(match.group(1)), bytes(attrs[Attribute.ID])
            keks.setdefault(version, []).append(_Kek(version, key_id, obj, _created_at(key_id)))
        for same in keks.values():
            # Two processes rotating at once can both create version N. Both keys are kept (unwrap
            # tries each; GCM tells which one fits) and everyone wraps with the lowest id.
            same.sort(key=lambda k: k.key_id)
        self._keks = keks
        self._scanned_at = time.monotonic()

    def _generate(self, key_type: KeyType, label: str, capabilities: MechanismFlag) -> Object:
        template = {Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        return self._session.generate_key(
            key_type, 256, id=_new_key_id(), label=label, store=True, capabilities=capabilities, template=template
        )

    def _active(self) -> list[_Kek]:
        if time.monotonic() - self._scanned_at >= _RESCAN_SECONDS:
            self._scan()
        if not self._keks:
            raise UnknownKeyVersion(f"HSM token {self.token_label!r} holds no KEK")
        return self._keks[max(self._keks)]

    # -- KeyProvider ---------------------------------------------------------------------------
    def active_version(self) -> int:
        """The highest KEK version on the token (re-scanned at most about once a second)."""
        with self._lock, _hsm("list KEKs"):
            return self._active()[0].version

    def versions(self) -> list[KekInfo]:
        """Every KEK version on the token, oldest first; retired versions no longer exist there."""
        with self._lock, _hsm("list KEKs"):
            self._scan()
            top = max(self._keks, default=0)
            return [
                KekInfo(v, "active" if v == top else "decrypt-only", min(k.created_at for k in same))
                for v, same in sorted(self._keks.items())
            ]

    def wrap(self, dek: bytes, aad: bytes) -> tuple[int, bytes]:
        """Encrypt ``dek`` under the active KEK inside the HSM (AES-GCM, ``aad`` bound)."""
        return self.wrap_many([(dek, aad)])[0]

    def wrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, bytes]]:
        """Wrap several (dek, aad) pairs under one KEK version."""
        out = []
        with self._lock, _hsm("wrap a data key"):
            kek = self._active()[0]
            key = cast("EncryptMixin", kek.key)
            for dek, aad in items:
                iv = os.urandom(_IV_BYTES)
                sealed = _as_bytes(key.encrypt(dek, mechanism=_GCM, mechanism_param=GCMParams(iv, aad, _TAG_BITS)))
                out.append((kek.version, pack_wrapped(kek.version, iv + sealed)))
        return out

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a blob from :meth:`wrap` inside the HSM; UnknownKeyVersion or DecryptionFailed."""
        with self._lock, _hsm("unwrap a data key"):
            if version not in self._keks and version > max(self._keks, default=0):
                self._scan()  # newer than anything seen: another process rotated
            keks = self._lookup(version)
            body = unpack_wrapped(version, wrapped)
            if len(body) < _IV_BYTES + _TAG_BITS // 8:
                raise DecryptionFailed("wrapped key too short")
            try:
                return self._open(keks, body, aad)
            except _STALE:
                self._scan()  # destroyed (retired) by another process since we looked
            return self._open(self._lookup(version), body, aad)

    def _lookup(self, version: int) -> list[_Kek]:
        keks = self._keks.get(version)
        if not keks:
            raise UnknownKeyVersion(f"KEK version {version} is not on HSM token {self.token_label!r}")
        return keks

    @staticmethod
    def _open(keks: list[_Kek], body: bytes, aad: bytes) -> bytes:
        param = GCMParams(body[:_IV_BYTES], aad, _TAG_BITS)
        for kek in keks:
            key = cast("DecryptMixin", kek.key)
            try:
                return _as_bytes(key.decrypt(body[_IV_BYTES:], mechanism=_GCM, mechanism_param=param))
            except _BAD_TAG:
                continue
        raise DecryptionFailed("wrapped key failed authentication (wrong key, associated data or tampered)")

    def create_version(self) -> int:
        """Generate a new AES-256 KEK on the token; being the highest version, it is active at once."""
        with self._lock, _hsm("create a KEK"):
            self._scan()
            version = max(self._keks, default=0) + 1
            self._generate(KeyType.AES, f"{KEK_LABEL_PREFIX}{version}", MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
            self._scan()
            return version

    def retire_version(self, version: int) -> None:
        """Destroy a non-active KEK version on the token."""
        with self._lock, _hsm("retire a KEK"):
            self._scan()
            keks = self._lookup(version)
            if version == max(self._keks):
                raise ValueError("cannot retire the active KEK version")
            for kek in keks:
                kek.key.destroy()
            self._scan()

    def index_key(self, label: str) -> bytes:
        """HMAC-SHA256 of the label under the HSM's index root, computed in the HSM and cached."""
        with self._lock:
            cached = self._index_keys.get(label)
            if cached is None:
                with _hsm("derive a blind-index key"):
                    root = cast("SignMixin", self._index_root)
                    cached = _as_bytes(root.sign(INDEX_INFO_PREFIX + label.encode(), mechanism=Mechanism.SHA256_HMAC))
                self._index_keys[label] = cached
            return cached

    def describe(self) -> dict[str, str]:
        """Module and token (never the PIN)."""
        return {
            "provider": self.name,
            "module": str(self.module_path),
            "token": self.token_label,
            "protection": "HSM: AES-256 KEKs generated on the token, sensitive, non-extractable",
        }

    def close(self) -> None:
        """Close this provider's session (the process-wide login stays for other providers)."""
        with self._lock, suppress(p11.PKCS11Error):  # already invalid after a re-initialise: nothing to release
            self._session.close()
