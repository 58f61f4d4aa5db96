"""Tokens the vault issues: to agency apps (client credentials) and, from the CLI, to anyone."""

from __future__ import annotations

import time
import uuid
from typing import Any

from api.security import tokens
from keys.signing import SigningKeyring
from vault.registry import ROLES


def issue(
    signing: SigningKeyring,
    issuer: str,
    audience: str,
    subject: str,
    role: str,
    agency: str | None,
    ttl: int,
    now: float | None = None,
) -> str:
    """A signed access token for ``subject`` acting as ``role`` (in ``agency``)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        "role": role,
    }
    if agency:
        claims["agency"] = agency
    key = signing.active()
    if key.private_pem is None:  # pragma: no cover - the active key always has its private half
        raise ValueError("active signing key has no private key")
    return tokens.sign(claims, key.private_pem, key.kid)


def vault_issuer(signing: SigningKeyring, issuer: str, audience: str, max_lifetime: int) -> tokens.Issuer:
    """The vault itself as a trusted issuer: keys from its own signing keyring."""

    def keys(kid: str) -> dict[str, str] | None:
        try:
            signing.refresh()  # one stat: a key retired by another process stops verifying here too
            return signing.public_jwk(kid)
        except Exception:
            return None

    return tokens.Issuer(issuer, audience, keys, max_lifetime)
