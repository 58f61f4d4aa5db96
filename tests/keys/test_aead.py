"""The AEAD wrapper against published AES-256-GCM vectors and Wycheproof-style invalid inputs."""

from __future__ import annotations

import pytest

from keys import aead
from keys.errors import DecryptionFailed

# AES-256-GCM test cases 13-16 of McGrew & Viega, "The Galois/Counter Mode of Operation" (NIST).
K0 = bytes(32)
K1 = bytes.fromhex("feffe9928665731c6d6a8f9467308308" * 2)
IV1 = bytes.fromhex("cafebabefacedbaddecaf888")
P1 = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
C1 = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)
A16 = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
NIST = [
    (K0, bytes(12), b"", b"", b"", bytes.fromhex("530f8afbc74536b9a963b4f1c4cb738b")),
    (
        K0,
        bytes(12),
        bytes(16),
        b"",
        bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18"),
        bytes.fromhex("d0d1c8a799996bf0265b98b5d48ab919"),
    ),
    (K1, IV1, P1, b"", C1, bytes.fromhex("b094dac5d93471bdec1a502270e3cc6c")),
    (K1, IV1, P1[:60], A16, C1[:60], bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")),
]


@pytest.mark.parametrize(("key", "iv", "plaintext", "aad", "ciphertext", "tag"), NIST)
def test_published_vectors_through_the_wrapper(
    key: bytes, iv: bytes, plaintext: bytes, aad: bytes, ciphertext: bytes, tag: bytes
) -> None:
    box = aead.Aead(key)
    sealed = box.seal(plaintext, aad, nonce=iv)
    assert sealed == iv + ciphertext + tag
    assert box.open(sealed, aad) == plaintext


@pytest.mark.parametrize(("key", "iv", "plaintext", "aad", "ciphertext", "tag"), NIST)
def test_modified_tag_ciphertext_or_aad_is_refused(
    key: bytes, iv: bytes, plaintext: bytes, aad: bytes, ciphertext: bytes, tag: bytes
) -> None:
    box = aead.Aead(key)
    bad_tag = bytes([tag[0] ^ 0x80]) + tag[1:]
    cases = [iv + ciphertext + bad_tag, iv + ciphertext + tag[:-1], iv + ciphertext + bytes(16)]
    if ciphertext:
        cases.append(iv + bytes([ciphertext[0] ^ 1]) + ciphertext[1:] + tag)
    for sealed in cases:
        with pytest.raises(DecryptionFailed):
            box.open(sealed, aad)
    with pytest.raises(DecryptionFailed):
        box.open(iv + ciphertext + tag, aad + b"x")


def test_short_inputs_are_refused_not_crashing() -> None:
    box = aead.Aead(bytes(32))
    for sealed in (b"", bytes(11), bytes(27)):
        with pytest.raises(DecryptionFailed):
            box.open(sealed, b"")


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_only_256_bit_keys_are_accepted(size: int) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        aead.Aead(bytes(size))


@pytest.mark.parametrize("size", [0, 8, 11, 13, 16])
def test_only_96_bit_nonces_are_accepted(size: int) -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        aead.Aead(bytes(32)).seal(b"x", b"", nonce=bytes(size))


def test_hkdf_and_hmac_are_deterministic_and_separated() -> None:
    root = bytes(range(32))
    assert aead.hkdf(root, b"a") == aead.hkdf(root, b"a")
    assert aead.hkdf(root, b"a") != aead.hkdf(root, b"b")
    mac = aead.Mac(aead.hkdf(root, b"a"))
    assert mac.digest(b"x") == mac.digest(b"x") != aead.Mac(aead.hkdf(root, b"b")).digest(b"x")
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
    assert aead.Mac(b"Jefe").digest(b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
