"""JSON Web Tokens: the one module that touches python-jose.

python-jose's defaults accept tokens they should not (no required claims; any algorithm its key
type allows). So this wrapper decides everything before and after calling it:

* one algorithm allow-list (ES256) checked on the raw header, and passed to python-jose too;
* the token size capped before any parsing; header members that point at keys elsewhere
  (jku, x5u, jwk, x5c, x5t, crit) refused, never followed;
* a key id that must look like a key id and belong to a configured issuer; the key handed to
  python-jose is a typed public JWK of that issuer, so an HMAC algorithm can never use it as a secret;
* exp, iat, iss, aud and sub required; iat and nbf not in the future; a bounded lifetime; exact
  issuer and audience matches;
* verified tokens cached (keyed by SHA-256 of the token) until they expire, and only while their
  issuer still holds the key that verified them (a retired key ends its tokens at once).
* OpenID Connect ID tokens (web sign-in) pass all of the above, then the sign-in's nonce and
  ``azp`` (verify_id_token).

Every refusal is a TokenRejected with a short reason code fit for the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jose import jwk, jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError, JWTError

ALGORITHMS = ("ES256",)
MAX_TOKEN_BYTES = 8192
LEEWAY_SECONDS = 30
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"})
_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")


class TokenRejected(Exception):
    """The token is not acceptable; ``reason`` is a stable code for audit and the caller."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Issuer:
    """A trusted issuer: its exact ``iss``, the audience it must name, and its public keys by kid."""

    issuer: str
    audience: str
    keys: Callable[[str], Mapping[str, str] | None]
    max_lifetime: int = 3600


@dataclass(frozen=True)
class VerifiedToken:
    """Claims of a token that passed every check."""

    issuer: str
    subject: str
    expires_at: int
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Verified:
    """A cache entry: the result, and the issuer key it rests on (re-checked on every hit)."""

    token: VerifiedToken
    issuer: Issuer
    kid: str
    key: Mapping[str, str]

    def still_trusted(self) -> bool:
        return self.issuer.keys(self.kid) == self.key


class TokenVerifier:
    """Verifies tokens from a fixed set of issuers, caching successes until expiry."""

    def __init__(self, issuers: list[Issuer], clock: Callable[[], float] = time.time, cache_size: int = 10_000) -> None:
        self._issuers = issuers
        self._clock = clock
        self._cache: OrderedDict[bytes, _Verified] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str, access_token: str | None = None) -> VerifiedToken:
        """Return the verified claims or raise TokenRejected (``access_token``: an ID token's, for at_hash)."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("token-too-large")
        bound = token if access_token is None else f"{token}\n{access_token}"  # at_hash checked against this one
        digest = hashlib.sha256(bound.encode("utf-8", "replace")).digest()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None:
            # Outside the lock: asking the issuer for its key may touch the file system.
            if hit.token.expires_at + LEEWAY_SECONDS >= now and hit.still_trusted():
                with self._lock:
                    if digest in self._cache:
                        self._cache.move_to_end(digest)
                return hit.token
            with self._lock:
                self._cache.pop(digest, None)
        verified = self._verify(token, now, access_token)
        with self._lock:
            self._cache[digest] = verified
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verified.token

    def forget(self) -> None:
        """Drop every cached verification (key retired, issuer removed)."""
        with self._lock:
            self._cache.clear()

    def _verify(self, token: str, now: float, access_token: str | None) -> _Verified:
        header = _header(token)
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise TokenRejected("bad-kid")
        for issuer in self._issuers:
            key = issuer.keys(kid)
            if key is not None:
                return _Verified(_decode(token, dict(key), issuer, now, access_token), issuer, kid, key)
        raise TokenRejected("unknown-kid")


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise TokenRejected("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise TokenRejected("malformed") from None
    if not isinstance(header, dict):
        raise TokenRejected("malformed")
    if header.get("alg") not in ALGORITHMS:  # exact, case-sensitive: "none", "NONE", "HS256" all fail
        raise TokenRejected("alg-not-allowed")
    if FORBIDDEN_HEADERS & set(header):
        raise TokenRejected("forbidden-header")
    return header


def _decode(
    token: str, key: dict[str, str], issuer: Issuer, now: float, access_token: str | None = None
) -> VerifiedToken:
    if key.get("kty") != "EC" or key.get("crv") != "P-256":
        raise TokenRejected("unusable-key")
    try:  # built here: a malformed configured key (point off the curve...) is our refusal, not a 500
        verifying_key = jwk.construct(key, ALGORITHMS[0])
    except (JOSEError, TypeError, ValueError):
        raise TokenRejected("unusable-key") from None
    options = {f"require_{c}": True for c in REQUIRED_CLAIMS} | {"leeway": LEEWAY_SECONDS}
    try:
        claims = jwt.decode(
            token,
            verifying_key,
            algorithms=list(ALGORITHMS),
            audience=issuer.audience,
            issuer=issuer.issuer,
            options=options,
            access_token=access_token,  # python-jose checks an at_hash claim against it (and refuses one without)
        )
    except ExpiredSignatureError:
        raise TokenRejected("expired") from None
    except JWTClaimsError as exc:
        raise TokenRejected(_claims_reason(str(exc))) from None
    except JWTError as exc:
        missing = re.search(r'missing required key "(\w+)"', str(exc))
        raise TokenRejected(f"missing-{missing.group(1)}" if missing else "bad-signature") from None
    except (TypeError, ValueError, OverflowError, RecursionError):
        # python-jose's claim checks call int() on exp/iat/nbf and catch only ValueError:
        # [1], null, {} and 1e999 escape as TypeError / OverflowError; deep JSON as RecursionError.
        raise TokenRejected("bad-claims") from None
    return _check_claims(claims, issuer, now)


def _claims_reason(message: str) -> str:
    text = message.lower()
    if "at_hash" in text:
        return "wrong-at-hash"
    for claim in ("audience", "issuer", "subject", "not yet valid", "issued at"):
        if claim in text:
            return {"not yet valid": "not-yet-valid", "issued at": "bad-iat"}.get(claim, f"wrong-{claim}")
    return "bad-claims"


def _check_claims(claims: Mapping[str, Any], issuer: Issuer, now: float) -> VerifiedToken:
    """Belt and braces after python-jose: exact types and values of every required claim."""
    for claim in REQUIRED_CLAIMS:
        if claim not in claims:
            raise TokenRejected(f"missing-{claim}")
    exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat)):
        raise TokenRejected("bad-time-claims")
    if claims["iss"] != issuer.issuer:
        raise TokenRejected("wrong-issuer")
    aud = claims["aud"]
    if not (aud == issuer.audience or (isinstance(aud, list) and issuer.audience in aud)):
        raise TokenRejected("wrong-audience")
    if not isinstance(sub, str) or not sub or len(sub) > 256:
        raise TokenRejected("bad-subject")
    if exp + LEEWAY_SECONDS < now:  # python-jose checked against its own clock; this is the verifier's
        raise TokenRejected("expired")
    if iat > now + LEEWAY_SECONDS:
        raise TokenRejected("iat-in-future")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or nbf > now + LEEWAY_SECONDS):
        raise TokenRejected("not-yet-valid")
    if exp - iat > issuer.max_lifetime:
        raise TokenRejected("lifetime-too-long")
    return VerifiedToken(issuer.issuer, sub, exp, dict(claims))


def verify_id_token(
    verifier: TokenVerifier, token: str, client_id: str, nonce: str, access_token: str | None = None
) -> VerifiedToken:
    """An OpenID Connect ID token: every check of ``verify`` (its issuer's audience is the client id; an
    at_hash matches ``access_token``), then the nonce this sign-in sent (exact, constant-time) and ``azp``
    (OIDC Core 3.1.3.7)."""
    verified = verifier.verify(token, access_token)
    got = verified.claims.get("nonce")
    if not isinstance(got, str) or not got:
        raise TokenRejected("missing-nonce")
    if not hmac.compare_digest(got.encode("utf-8", "replace"), nonce.encode("utf-8")):
        raise TokenRejected("wrong-nonce")
    aud, azp = verified.claims.get("aud"), verified.claims.get("azp")
    if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (azp is not None and azp != client_id):
        raise TokenRejected("wrong-azp")
    return verified


def sign(claims: Mapping[str, Any], private_pem: bytes, kid: str) -> str:
    """A compact JWS (JWT) over ``claims`` with the vault's ES256 key."""
    return str(jwt.encode(dict(claims), private_pem.decode(), algorithm=ALGORITHMS[0], headers={"kid": kid}))


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims WITHOUT verification: only for logging why a token was refused, never for decisions."""
    try:
        raw = jwt.get_unverified_claims(token)
    except JWTError:
        return {}
    return json.loads(json.dumps(raw, default=str)) if isinstance(raw, dict) else {}
