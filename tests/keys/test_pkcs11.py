"""The PKCS#11 KEK provider, for real against SoftHSM2: wrap/unwrap, non-extractability, rotation, blind index."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pkcs11
import pytest
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, MechanismFlag
from pkcs11 import exceptions as p11
from pkcs11.types import EncryptMixin, Session, WrapMixin

from keys.errors import DecryptionFailed, KeyringError, ProviderError, UnknownKeyVersion
from keys.local import LocalKeyProvider
from keys.pkcs11 import INDEX_ROOT_LABEL, KEK_LABEL_PREFIX, Pkcs11KeyProvider, reinitialize
from keys.provider import pack_wrapped, unpack_wrapped
from tests.support.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

DEK = bytes(range(32))
AAD = b"citizen-vault/dek/v1\x00owner-slot-version"
ROOT = Path(__file__).resolve().parents[2]


def second(token: SoftHsmToken, pin: str | None = None) -> Pkcs11KeyProvider:
    return Pkcs11KeyProvider(token.module, token.label, pin or token.pin, create=False)


def test_wrap_unwrap_round_trip(hsm_provider: Pkcs11KeyProvider) -> None:
    version, blob = hsm_provider.wrap(DEK, AAD)
    assert version == 1
    assert len(unpack_wrapped(1, blob)) == 12 + 32 + 16  # iv || ciphertext || tag
    assert DEK not in blob
    assert hsm_provider.unwrap(version, blob, AAD) == DEK
    again = hsm_provider.wrap(DEK, AAD)[1]
    assert again != blob  # fresh IV every time


def test_wrap_many_round_trip(hsm_provider: Pkcs11KeyProvider) -> None:
    items = [(bytes([i]) * 32, b"aad-%d" % i) for i in range(5)]
    for (dek, aad), (version, blob) in zip(items, hsm_provider.wrap_many(items), strict=True):
        assert hsm_provider.unwrap(version, blob, aad) == dek


def test_wrong_aad_fails(hsm_provider: Pkcs11KeyProvider) -> None:
    version, blob = hsm_provider.wrap(DEK, AAD)
    with pytest.raises(DecryptionFailed):
        hsm_provider.unwrap(version, blob, AAD + b"x")
    assert hsm_provider.unwrap(version, blob, AAD) == DEK  # a failed tag leaves the session usable


@pytest.mark.parametrize("where", [5, 5 + 12, -1])  # IV, ciphertext, tag
def test_tampered_blob_fails(hsm_provider: Pkcs11KeyProvider, where: int) -> None:
    version, blob = hsm_provider.wrap(DEK, AAD)
    tampered = bytearray(blob)
    tampered[where] ^= 0x01
    with pytest.raises(DecryptionFailed):
        hsm_provider.unwrap(version, bytes(tampered), AAD)


def test_malformed_blobs_fail(hsm_provider: Pkcs11KeyProvider) -> None:
    version, blob = hsm_provider.wrap(DEK, AAD)
    with pytest.raises(DecryptionFailed):
        hsm_provider.unwrap(version, blob[:20], AAD)
    with pytest.raises(DecryptionFailed):
        hsm_provider.unwrap(version, pack_wrapped(version, b""), AAD)
    with pytest.raises(DecryptionFailed):  # header names another version
        hsm_provider.unwrap(version, pack_wrapped(7, unpack_wrapped(version, blob)), AAD)
    with pytest.raises(UnknownKeyVersion):
        hsm_provider.unwrap(9, blob, AAD)


def _raw_session(token: SoftHsmToken) -> Session:
    # Login is per process, so this unauthenticated session sees the provider's private objects.
    return pkcs11.lib(str(token.module)).get_token(token_label=token.label).open(rw=True)


def test_keys_never_leave_the_hsm(softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider) -> None:
    session = _raw_session(softhsm_token)
    try:
        for label in (f"{KEK_LABEL_PREFIX}1", INDEX_ROOT_LABEL):
            key = session.get_key(label=label)
            assert key[Attribute.TOKEN] is True
            assert key[Attribute.SENSITIVE] is True and key[Attribute.ALWAYS_SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False and key[Attribute.NEVER_EXTRACTABLE] is True
            assert key[Attribute.LOCAL] is True  # generated on the token, never imported
            with pytest.raises(p11.AttributeSensitive):
                key[Attribute.VALUE]
            wrapper = cast(WrapMixin, session.generate_key(KeyType.AES, 256, capabilities=MechanismFlag.WRAP))
            with pytest.raises(p11.PKCS11Error):
                wrapper.wrap_key(key)
    finally:
        session.close()


def test_extractable_key_with_our_label_is_refused(
    softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider
) -> None:
    session = _raw_session(softhsm_token)
    try:
        template = {Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False}
        session.generate_key(KeyType.AES, 256, label=f"{KEK_LABEL_PREFIX}2", store=True, template=template)
    finally:
        session.close()
    with pytest.raises(ProviderError, match="extractable"):
        hsm_provider.versions()


def test_rotation_keeps_old_blobs_readable(hsm_provider: Pkcs11KeyProvider) -> None:
    _, old = hsm_provider.wrap(DEK, AAD)
    assert hsm_provider.create_version() == 2
    assert hsm_provider.active_version() == 2
    assert [(i.version, i.state) for i in hsm_provider.versions()] == [(1, "decrypt-only"), (2, "active")]
    assert hsm_provider.unwrap(1, old, AAD) == DEK
    version, new = hsm_provider.wrap(DEK, AAD)
    assert version == 2
    assert hsm_provider.unwrap(2, new, AAD) == DEK
    with pytest.raises(DecryptionFailed):  # a v1 blob relabelled as v2 does not open under v2
        hsm_provider.unwrap(2, pack_wrapped(2, unpack_wrapped(1, old)), AAD)


def test_retire_destroys_the_version(hsm_provider: Pkcs11KeyProvider) -> None:
    _, old = hsm_provider.wrap(DEK, AAD)
    hsm_provider.create_version()
    with pytest.raises(ValueError, match="active"):
        hsm_provider.retire_version(2)
    hsm_provider.retire_version(1)
    with pytest.raises(UnknownKeyVersion):
        hsm_provider.unwrap(1, old, AAD)
    assert [i.version for i in hsm_provider.versions()] == [2]
    with pytest.raises(UnknownKeyVersion):
        hsm_provider.retire_version(1)
    with pytest.raises(UnknownKeyVersion):
        hsm_provider.retire_version(42)
    assert hsm_provider.create_version() == 3  # versions are never reused


def test_second_instance_sees_rotation_and_retirement(
    softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider
) -> None:
    other = second(softhsm_token)
    try:
        _, old = other.wrap(DEK, AAD)
        assert other.unwrap(1, old, AAD) == DEK  # caches v1's handle
        hsm_provider.create_version()
        _, new = hsm_provider.wrap(DEK, AAD)
        assert other.unwrap(2, new, AAD) == DEK  # unknown newer version: re-scan
        time.sleep(1.1)  # active_version re-scans at most about once a second
        assert other.active_version() == 2
        hsm_provider.retire_version(1)
        with pytest.raises(UnknownKeyVersion):  # the cached handle is stale, not trusted
            other.unwrap(1, old, AAD)
    finally:
        other.close()


def test_another_process_sees_and_makes_versions(softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider) -> None:
    script = (
        "import sys; from pathlib import Path; from keys.pkcs11 import Pkcs11KeyProvider as P\n"
        "p = P(Path(sys.argv[1]), sys.argv[2], sys.argv[3], create=False)\n"
        "v = p.create_version(); _, blob = p.wrap(bytes(range(32)), b'child')\n"
        "print(v, blob.hex())\n"
    )
    args = [str(softhsm_token.module), softhsm_token.label, softhsm_token.pin]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    version, blob = done.stdout.split()
    assert int(version) == 2
    assert hsm_provider.unwrap(2, bytes.fromhex(blob), b"child") == DEK


def test_index_keys(tmp_path: Path, softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider) -> None:
    key = hsm_provider.index_key("national_id")
    assert len(key) == 32
    assert hsm_provider.index_key("national_id") == key
    assert hsm_provider.index_key("email") != key
    hsm_provider.create_version()
    assert hsm_provider.index_key("national_id") == key  # independent of KEK rotation
    other = second(softhsm_token)
    try:
        assert other.index_key("national_id") == key
    finally:
        other.close()
    local = LocalKeyProvider.create(tmp_path / "keyring.json", None, scrypt_n=2**10)
    assert local.index_key("national_id") != key


def test_create_false_on_an_empty_token_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(KeyringError, match="citizen-vault init"):
        second(softhsm_token)


def test_create_is_idempotent(softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider) -> None:
    again = Pkcs11KeyProvider(softhsm_token.module, softhsm_token.label, softhsm_token.pin, create=True)
    try:
        assert [i.version for i in again.versions()] == [1]
        assert again.index_key("x") == hsm_provider.index_key("x")
    finally:
        again.close()


def test_missing_token_or_module_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(KeyringError, match="no HSM token labelled"):
        Pkcs11KeyProvider(softhsm_token.module, "no-such-token", softhsm_token.pin, create=True)
    with pytest.raises(KeyringError, match="cannot use PKCS#11 module"):
        Pkcs11KeyProvider(Path("/nonexistent/libpkcs11.so"), softhsm_token.label, softhsm_token.pin, create=True)


def test_wrong_pin_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(KeyringError, match="wrong PIN"):  # checked by the token (not logged in yet)
        Pkcs11KeyProvider(softhsm_token.module, softhsm_token.label, "0000", create=True)
    provider = Pkcs11KeyProvider(softhsm_token.module, softhsm_token.label, softhsm_token.pin, create=True)
    try:
        with pytest.raises(KeyringError, match="wrong PIN"):  # checked against the process's login
            second(softhsm_token, pin="0000")
    finally:
        provider.close()
    reinitialize(softhsm_token.module)  # logged out: the token checks again
    with pytest.raises(KeyringError, match="wrong PIN"):
        second(softhsm_token, pin="0000")


def test_describe_names_module_and_token_not_pin(softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider) -> None:
    facts = hsm_provider.describe()
    assert facts["provider"] == "pkcs11"
    assert facts["module"] == str(softhsm_token.module)
    assert facts["token"] == softhsm_token.label
    assert softhsm_token.pin not in "".join(facts.values())


def test_duplicate_version_from_a_concurrent_rotation_still_unwraps(
    softhsm_token: SoftHsmToken, hsm_provider: Pkcs11KeyProvider
) -> None:
    hsm_provider.create_version()
    session = _raw_session(softhsm_token)  # a second process that also made "version 2"
    try:
        template = {Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        twin = cast(
            EncryptMixin,
            session.generate_key(
                KeyType.AES, 256, id=b"\xff" * 16, label=f"{KEK_LABEL_PREFIX}2", store=True, template=template
            ),
        )
        iv = bytes(12)
        sealed = twin.encrypt(DEK, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, AAD, 128))
        assert isinstance(sealed, bytes)
    finally:
        session.close()
    assert [i.version for i in hsm_provider.versions()] == [1, 2]
    assert hsm_provider.unwrap(2, pack_wrapped(2, iv + sealed), AAD) == DEK  # made with the twin
    version, blob = hsm_provider.wrap(DEK, AAD)  # made with the older (lower id) key
    assert version == 2 and hsm_provider.unwrap(2, blob, AAD) == DEK


def test_threads_share_one_provider(hsm_provider: Pkcs11KeyProvider) -> None:
    def work(n: int) -> bool:
        dek = bytes([n % 256]) * 32
        version, blob = hsm_provider.wrap(dek, b"t%d" % n)
        return hsm_provider.unwrap(version, blob, b"t%d" % n) == dek and len(hsm_provider.index_key(str(n % 7))) == 32

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(200)))
