"""ID tokens the sign-in must refuse, forged byte by byte (tests/support/jwt_forge.py), and the
provider's keys: fetched from its JWKS only, refreshed on an unknown kid at most once a minute,
and a JWKS that cannot be fetched refuses every token (fail closed).

The provider here is a small stub on 127.0.0.1 (its discovery document and JWKS), because these
tests need to sign with its key, count its requests and take it down; the real flow is in
test_oidc_signin.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from api.security.oidc import OidcClient, OidcConfig, OidcRefused
from api.settings import AppSettings
from tests.support import jwt_forge as forge

CLIENT_ID = "citizen-vault-web"
NONCE = "N" * 43


@dataclass
class Stub:
    """A provider's discovery document and JWKS; ``jwks_status`` other than 200 takes the JWKS down."""

    key: ec.EllipticCurvePrivateKey
    kid: str = "stub-key-1"
    jwks_status: int = 200
    jwks_hits: int = 0
    issuer: str = ""
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        key = {
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "x": forge.b64url(numbers.x.to_bytes(32, "big")),
            "y": forge.b64url(numbers.y.to_bytes(32, "big")),
        }
        return {"keys": [key, *self.extra_keys]}


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub(forge.new_ec_key())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body, status = _discovery(state.issuer), 200
            elif self.path == "/jwks":
                state.jwks_hits += 1
                body, status = state.jwks(), state.jwks_status
            else:
                body, status = {}, 404
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join()


def _discovery(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def client_for(stub: Stub, clock: Clock | None = None) -> OidcClient:
    settings = AppSettings(
        oidc_issuer=stub.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr("not-a-real-secret"),
        oidc_redirect_url="http://localhost/login/oidc/callback",
        oidc_default_role="citizen",
    )
    config = OidcConfig.from_settings(settings)
    assert config is not None
    return OidcClient(config, clock=clock or time.time)


def claims(stub: Stub, **change: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": stub.issuer, "aud": [CLIENT_ID], "sub": "d1c1a0de-0000-4000-8000-00000000c0de", "iat": now}
    return base | {"exp": now + 300, "nonce": NONCE} | change


def es256(stub: Stub, payload: dict[str, Any], kid: str | None = None) -> str:
    return forge.es_sign({"alg": "ES256", "typ": "JWT", "kid": kid or stub.kid}, payload, stub.key)


def refused(client: OidcClient, token: str, nonce: str = NONCE) -> str:
    with pytest.raises(OidcRefused) as caught:
        client.verify_id_token(token, nonce)
    return caught.value.reason


def test_a_well_formed_id_token_from_the_provider_is_accepted(stub: Stub) -> None:
    verified = client_for(stub).verify_id_token(es256(stub, claims(stub)), NONCE)
    assert verified.subject == "d1c1a0de-0000-4000-8000-00000000c0de"


def test_wrong_nonce_is_refused(stub: Stub) -> None:
    assert refused(client_for(stub), es256(stub, claims(stub, nonce="M" * 43))) == "id-token-wrong-nonce"


def test_missing_nonce_is_refused(stub: Stub) -> None:
    payload = claims(stub)
    del payload["nonce"]
    assert refused(client_for(stub), es256(stub, payload)) == "id-token-missing-nonce"


def test_wrong_audience_is_refused(stub: Stub) -> None:
    token = es256(stub, claims(stub, aud=["another-client"]))
    assert refused(client_for(stub), token) == "id-token-wrong-audience"


def test_another_authorized_party_is_refused(stub: Stub) -> None:
    token = es256(stub, claims(stub, aud=[CLIENT_ID, "another-client"], azp="another-client"))
    assert refused(client_for(stub), token) == "id-token-wrong-azp"


def test_wrong_issuer_is_refused(stub: Stub) -> None:
    token = es256(stub, claims(stub, iss="http://127.0.0.1:1"))
    assert refused(client_for(stub), token) == "id-token-wrong-issuer"


def test_hs256_signed_with_the_public_key_is_refused(stub: Stub) -> None:
    public = json.dumps(stub.jwks()["keys"][0]).encode()  # algorithm confusion: the public key as an HMAC secret
    token = forge.hs_sign({"alg": "HS256", "typ": "JWT", "kid": stub.kid}, claims(stub), public)
    assert refused(client_for(stub), token) == "id-token-alg-not-allowed"


def test_alg_none_is_refused(stub: Stub) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": stub.kid}
    assert refused(client_for(stub), forge.assemble(header, claims(stub), "")) == "id-token-malformed"
    assert refused(client_for(stub), forge.assemble(header, claims(stub), "AA")) == "id-token-alg-not-allowed"


def test_token_signed_by_another_key_under_the_providers_kid_is_refused(stub: Stub) -> None:
    token = forge.es_sign({"alg": "ES256", "kid": stub.kid}, claims(stub), forge.new_ec_key())
    assert refused(client_for(stub), token) == "id-token-bad-signature"


def test_unreachable_jwks_refuses_the_id_token(stub: Stub) -> None:
    stub.jwks_status = 503
    assert refused(client_for(stub), es256(stub, claims(stub))) == "id-token-unknown-kid"


def test_unknown_kid_refreshes_the_jwks_at_most_once_a_minute(stub: Stub) -> None:
    clock = Clock()
    client = client_for(stub, clock)
    client.verify_id_token(es256(stub, claims(stub)), NONCE)
    assert stub.jwks_hits == 1
    rotated = forge.new_ec_key()
    old_key, stub.key, stub.kid = stub.key, rotated, "stub-key-2"  # the provider rotates its key
    assert refused(client, es256(stub, claims(stub))) == "id-token-unknown-kid"  # within the minute: not refetched
    assert stub.jwks_hits == 1
    clock.now += 61
    assert client.verify_id_token(es256(stub, claims(stub)), NONCE).subject  # refetched once, new key found
    assert stub.jwks_hits == 2
    for i in range(5):  # a spray of made-up kids costs no more fetches within the minute
        refused(client, forge.es_sign({"alg": "ES256", "kid": f"made-up-{i}"}, claims(stub), old_key))
    assert stub.jwks_hits == 2


def test_discovery_naming_an_endpoint_elsewhere_is_refused_without_fetching_it(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = _discovery(stub.issuer) | {"jwks_uri": "http://127.0.0.2:9/jwks"}
    monkeypatch.setattr("tests.api.test_oidc_id_token._discovery", lambda issuer: elsewhere)
    with pytest.raises(OidcRefused) as caught:
        client_for(stub).begin("/portal")
    assert caught.value.reason == "discovery-foreign-endpoint"
