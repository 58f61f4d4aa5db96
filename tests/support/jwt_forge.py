"""Hand-made JSON Web Tokens for attack tests: no JWT library, every byte chosen by the test.

Headers and payloads are given as dicts (serialised compactly) or as raw bytes (to send JSON a
serialiser would refuse, such as ``1e999``). Signatures are computed with the standard library
(HMAC) or the cryptography library (ECDSA P-256, as raw r||s per RFC 7518), or given verbatim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(part: dict[str, Any] | bytes) -> str:
    """One encoded segment: a dict as compact JSON, or raw bytes as they are."""
    raw = part if isinstance(part, bytes) else json.dumps(part, separators=(",", ":")).encode()
    return b64url(raw)


def signing_input(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    """``header.payload``, the bytes a JWS signature covers."""
    return f"{segment(header)}.{segment(payload)}"


def assemble(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, signature: str) -> str:
    """A compact token with a signature segment given verbatim (may be empty or garbage)."""
    return f"{signing_input(header, payload)}.{signature}"


def hs_sign(header: dict[str, Any], payload: dict[str, Any] | bytes, secret: bytes) -> str:
    """A token MACed with HMAC under ``secret``, using the hash named by ``header["alg"]``."""
    data = signing_input(header, payload)
    mac = hmac.new(secret, data.encode("ascii"), HMAC_HASHES[str(header["alg"])]).digest()
    return f"{data}.{b64url(mac)}"


def es256_raw_signature(data: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """ECDSA P-256 / SHA-256 signature in the JWS form: r and s, 32 bytes each."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es_sign(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """A token signed with ECDSA P-256 (whatever ``alg`` the header claims)."""
    data = signing_input(header, payload)
    return f"{data}.{b64url(es256_raw_signature(data.encode('ascii'), key))}"


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (an attacker's, or a test identity provider's)."""
    return ec.generate_private_key(ec.SECP256R1())


def load_private_pem(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The vault's signing key from its PKCS#8 PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def public_jwk(key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    """The public JWK of a P-256 key."""
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    }


def public_key_from_jwk(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    """The public key a P-256 JWK describes."""
    x = int.from_bytes(b64url_decode(jwk["x"]), "big")
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM: what an algorithm-confusion attacker uses as an HMAC secret."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo DER."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def self_signed_certificate_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed certificate for ``key`` (for an x5c header)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def tamper(text: str) -> str:
    """``text`` with its middle character changed (every bit of a middle base64 character counts)."""
    i = len(text) // 2
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
