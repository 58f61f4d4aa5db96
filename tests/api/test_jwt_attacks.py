"""python-jose's known weaknesses, one attack per test, against the real app and a real vault.

Every forged token is built by hand (tests/support/jwt_forge.py): base64url, HMAC from the
standard library, ECDSA from the cryptography library. Each refusal must be a 401 problem+json
whose ``reason`` is a short audit code; never a 500. Positive controls (a token that must still be
accepted) sit next to the attacks they bound, so that a refusal of everything cannot pass.

SECURITY.md, section "JWT attack list", maps each attack to its defence and its test here.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jose import jwt as jose_jwt

from api.app import MAX_TOKEN_LIFETIME, create_app
from api.security import issuing, tokens
from api.security.tokens import LEEWAY_SECONDS, TokenRejected, TokenVerifier
from api.settings import AppSettings, ExternalIssuer
from keys.signing import SigningKeyring
from tests.support import jwt_forge as forge
from vault.runtime import Vault, init_vault

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "citizen-vault"
AGENCY = "civil-registry"
REGISTRAR = "reg-1"
URL = "/v1/citizens"
PARAMS = {"national_id": "123456789"}
AUDIT_CODE = re.compile(r"[a-z][a-z0-9-]{1,40}")

IDP_ISSUER = "https://login.example.gov"
IDP_AUDIENCE = "https://vault.example.gov/api"
IDP_KID = "idp-2025-01"
IDP_BROKEN_KID = "idp-broken"  # an EC entry whose point is garbage
IDP_OCT_KID = "idp-oct"  # a symmetric key published by mistake
IDP_OCT_SECRET = b"idp-shared-secret-published-by-mistake"
IDP_OFFICER = "officer-7"


class _Drop:
    """Marker: leave this claim out."""

    def __repr__(self) -> str:  # stable test ids across pytest-xdist workers
        return "DROP"


DROP = _Drop()


# -- environment --------------------------------------------------------------------------------


@dataclass
class Env:
    """A real vault (registry seeded) behind the real app."""

    settings: AppSettings
    vault: Vault
    client: TestClient

    @property
    def kid(self) -> str:
        return self.vault.signing.active().kid

    @property
    def private_pem(self) -> bytes:
        pem = self.vault.signing.active().private_pem
        assert pem is not None
        return pem

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return forge.load_private_pem(self.private_pem)

    @property
    def public_jwk(self) -> dict[str, str]:
        return self.vault.signing.public_jwk(self.kid)

    def header(self, **changes: Any) -> dict[str, Any]:
        """The header the vault itself would write, with ``changes`` (DROP removes a member)."""
        return _changed({"alg": "ES256", "typ": "JWT", "kid": self.kid}, changes)

    def sign(self, payload: dict[str, Any]) -> str:
        """Signed correctly by the vault's active key, through the production signer."""
        return tokens.sign(payload, self.private_pem, self.kid)

    def issue(self, subject: str = REGISTRAR, role: str = "registrar", ttl: int = 600) -> str:
        """A token exactly as the vault issues them."""
        return issuing.issue(self.vault.signing, ISSUER, AUDIENCE, subject, role, AGENCY, ttl)

    def call(self, token: str) -> httpx.Response:
        """The protected lookup, with ``token`` as bearer."""
        response: httpx.Response = self.client.get(URL, params=PARAMS, headers={"Authorization": f"Bearer {token}"})
        return response


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if isinstance(value, _Drop):
            out.pop(name, None)
        else:
            out[name] = value
    return out


def claims(**changes: Any) -> dict[str, Any]:
    """Valid registrar claims for now, with ``changes`` (DROP removes a claim)."""
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": REGISTRAR,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "role": "registrar",
        "agency": AGENCY,
    }
    return _changed(base, changes)


def raw_claims(**json_fragments: str) -> bytes:
    """Valid claims as JSON text, with some values replaced by raw JSON (``1e999``, ``null``...)."""
    members = {name: json.dumps(value) for name, value in claims().items()}
    members.update(json_fragments)
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}").encode()


def build_env(data_dir: Path, external: list[ExternalIssuer] | None = None) -> Iterator[Env]:
    settings = AppSettings(
        data_dir=data_dir,
        keyring_scrypt_n=2**10,
        issuer=ISSUER,
        audience=AUDIENCE,
        external_issuers=external or [],
    )
    vault = init_vault(settings)
    vault.registry.create_agency(AGENCY, "Civil Registry")
    vault.registry.assign(REGISTRAR, AGENCY, "registrar")
    with TestClient(create_app(settings, vault), raise_server_exceptions=False) as client:
        yield Env(settings, vault, client)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from build_env(tmp_path / "vault")


@dataclass
class Idp:
    """An external identity provider the vault trusts (its JWKS in a file)."""

    key: ec.EllipticCurvePrivateKey
    env: Env

    def claims(self, **changes: Any) -> dict[str, Any]:
        return claims(**({"iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": IDP_OFFICER} | changes))

    def header(self, **changes: Any) -> dict[str, Any]:
        return _changed({"alg": "ES256", "typ": "JWT", "kid": IDP_KID}, changes)


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[Idp]:
    key = forge.new_ec_key()
    jwks = tmp_path / "idp-jwks.json"
    published = [
        forge.public_jwk(key.public_key(), IDP_KID),
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": IDP_BROKEN_KID},
        {"kty": "oct", "k": forge.b64url(IDP_OCT_SECRET), "kid": IDP_OCT_KID},
    ]
    jwks.write_text(json.dumps({"keys": published}))
    external = [ExternalIssuer(issuer=IDP_ISSUER, audience=IDP_AUDIENCE, jwks_file=jwks)]
    for env in build_env(tmp_path / "vault", external):
        env.vault.registry.assign(IDP_OFFICER, AGENCY, "registrar")
        yield Idp(key, env)


# -- no network, ever ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    """Every outbound connection or name lookup is recorded and refused; none may happen."""
    attempts: list[tuple[str, object]] = []

    def refuse(kind: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            attempts.append((kind, args[1] if kind.startswith("socket.") and len(args) > 1 else args[:1]))
            raise OSError(f"network disabled in JWT tests ({kind})")

        return record

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    yield attempts
    assert attempts == [], f"verification attempted network access: {attempts}"


def test_network_guard_is_armed(network_attempts: list[tuple[str, object]]) -> None:
    """The no-network proof is not vacuous: the guard does see connection attempts."""
    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(OSError, match="network disabled"):
        sock.connect(("127.0.0.1", 9))
    assert [kind for kind, _ in network_attempts] == ["create_connection", "socket.connect"]
    network_attempts.clear()


# -- assertions ---------------------------------------------------------------------------------


def assert_refused(response: httpx.Response, reason: str) -> None:
    """401, problem+json, ``reason`` an audit code (also in WWW-Authenticate)."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401
    assert body["reason"] == reason
    assert AUDIT_CODE.fullmatch(body["reason"])
    assert f'error_description="{reason}"' in response.headers["www-authenticate"]


def assert_accepted(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"ids": []}


def test_positive_control_issued_token_is_accepted(env: Env) -> None:
    assert_accepted(env.call(env.issue()))


def test_positive_control_hand_forged_token_with_vault_key_is_accepted(env: Env) -> None:
    """The forging helpers produce valid tokens: refusals below are due to the attack alone."""
    assert_accepted(env.call(forge.es_sign(env.header(), claims(), env.private_key)))


# -- algorithm -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize(("signature", "reason"), [("", "malformed"), (forge.b64url(b"garbage"), "alg-not-allowed")])
def test_alg_none_is_refused(env: Env, alg: str, signature: str, reason: str) -> None:
    assert_refused(env.call(forge.assemble(env.header(alg=alg), claims(), signature)), reason)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("form", ["pem", "der", "jwk-json", "jwk-json-compact"])
def test_hmac_keyed_with_vault_public_key_is_refused(env: Env, alg: str, form: str) -> None:
    """Algorithm confusion: the public key (as PEM, DER or JWK JSON) used as an HMAC secret."""
    public = forge.public_key_from_jwk(env.public_jwk)
    secret = {
        "pem": forge.public_pem(public),
        "der": forge.public_der(public),
        "jwk-json": json.dumps(env.public_jwk).encode(),
        "jwk-json-compact": json.dumps(env.public_jwk, separators=(",", ":")).encode(),
    }[form]
    assert_refused(env.call(forge.hs_sign(env.header(alg=alg), claims(), secret)), "alg-not-allowed")


def test_hmac_with_empty_key_is_refused(env: Env) -> None:
    assert_refused(env.call(forge.hs_sign(env.header(alg="HS256"), claims(), b"")), "alg-not-allowed")


def test_hmac_confusion_also_fails_inside_python_jose_call(env: Env) -> None:
    """Second layer: even past the header check, python-jose gets ES256 only and a typed EC key."""
    secret = forge.public_pem(forge.public_key_from_jwk(env.public_jwk))
    token = forge.hs_sign(env.header(alg="HS256"), claims(), secret)
    issuer = issuing.vault_issuer(env.vault.signing, ISSUER, AUDIENCE, MAX_TOKEN_LIFETIME)
    with pytest.raises(TokenRejected) as refused:
        tokens._decode(token, dict(env.public_jwk), issuer, time.time())
    assert refused.value.reason == "bad-signature"
    oct_key = {"kty": "oct", "k": forge.b64url(secret)}
    with pytest.raises(TokenRejected) as refused:
        tokens._decode(token, oct_key, issuer, time.time())
    assert refused.value.reason == "unusable-key"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES384", "ES512", "EdDSA", "es256", "ES256 ", ["ES256"], None])
def test_other_alg_on_ec_signature_is_refused(env: Env, alg: object) -> None:
    """RS256 (and any other label) on a genuine EC signature: only the exact string ES256 passes."""
    assert_refused(env.call(forge.es_sign(env.header(alg=alg), claims(), env.private_key)), "alg-not-allowed")


def test_missing_alg_is_refused(env: Env) -> None:
    assert_refused(env.call(forge.es_sign(env.header(alg=DROP), claims(), env.private_key)), "alg-not-allowed")


# -- signature -----------------------------------------------------------------------------------


def test_stripped_signature_two_segments_is_refused(env: Env) -> None:
    token = env.issue()
    assert_refused(env.call(token.rsplit(".", 1)[0]), "malformed")


def test_stripped_signature_empty_third_segment_is_refused(env: Env) -> None:
    token = env.issue()
    assert_refused(env.call(token.rsplit(".", 1)[0] + "."), "malformed")


@pytest.mark.parametrize("extra", [".", ".AAAA", ".AAAA.AAAA"])
def test_extra_segments_are_refused(env: Env, extra: str) -> None:
    assert_refused(env.call(env.issue() + extra), "malformed")


def test_modified_signature_is_refused(env: Env) -> None:
    head, body, signature = env.issue().split(".")
    assert_refused(env.call(f"{head}.{body}.{forge.tamper(signature)}"), "bad-signature")


def test_truncated_signature_is_refused(env: Env) -> None:
    head, body, signature = env.issue().split(".")
    assert_refused(env.call(f"{head}.{body}.{signature[:43]}"), "bad-signature")


def test_modified_payload_with_original_signature_is_refused(env: Env) -> None:
    head, _, signature = env.issue().split(".")
    elevated = forge.segment(claims(sub="admin-1", role="admin", agency="vault"))
    assert_refused(env.call(f"{head}.{elevated}.{signature}"), "bad-signature")


def test_attacker_key_with_vault_kid_is_refused(env: Env) -> None:
    """The signature is checked against the kid's key in the vault, not any key the token brings."""
    assert_refused(env.call(forge.es_sign(env.header(), claims(), forge.new_ec_key())), "bad-signature")


# -- key id --------------------------------------------------------------------------------------


def test_unknown_kid_is_refused(env: Env) -> None:
    token = forge.es_sign(env.header(kid="20990101-deadbeef"), claims(), env.private_key)
    assert_refused(env.call(token), "unknown-kid")


@pytest.mark.parametrize(
    "kid",
    ["../../keyring.json", "' OR 1=1 --", "abc\x00def", "k" * 1000, "", 42, ["a"], {"kid": "x"}, None],
    ids=["path-traversal", "sql", "nul-byte", "1000-chars", "empty", "integer", "list", "object", "null"],
)
def test_hostile_kid_is_refused(env: Env, kid: object) -> None:
    response = env.call(forge.es_sign(env.header(kid=kid), claims(), env.private_key))
    assert_refused(response, "bad-kid")
    assert "keyring" not in response.text and "OR 1=1" not in response.text


def test_missing_kid_is_refused(env: Env) -> None:
    assert_refused(env.call(forge.es_sign(env.header(kid=DROP), claims(), env.private_key)), "bad-kid")


# -- headers that point at keys elsewhere -------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "http://127.0.0.1:9/jwks.json"),
        ("jku", "https://attacker.example/.well-known/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
    ],
)
def test_key_url_headers_are_refused_without_network(
    env: Env, network_attempts: list[tuple[str, object]], member: str, value: str
) -> None:
    """jku / x5u pointing at the attacker's keys, signed with the attacker's key: refused, never fetched."""
    attacker = forge.new_ec_key()
    token = forge.es_sign(env.header(**{member: value}), claims(), attacker)
    assert_refused(env.call(token), "forbidden-header")
    assert network_attempts == []


def test_embedded_jwk_with_attackers_key_is_refused(env: Env, network_attempts: list[tuple[str, object]]) -> None:
    """The attacker's own public key in the header, the token signed with the matching private key."""
    attacker = forge.new_ec_key()
    for kid in (env.kid, "attacker-1"):
        embedded = forge.public_jwk(attacker.public_key(), kid)
        token = forge.es_sign(env.header(kid=kid, jwk=embedded), claims(), attacker)
        assert_refused(env.call(token), "forbidden-header")
    assert network_attempts == []


def test_x5c_with_attackers_certificate_is_refused(env: Env, network_attempts: list[tuple[str, object]]) -> None:
    attacker = forge.new_ec_key()
    chain = [base64.b64encode(forge.self_signed_certificate_der(attacker)).decode()]
    token = forge.es_sign(env.header(x5c=chain), claims(), attacker)
    assert_refused(env.call(token), "forbidden-header")
    assert network_attempts == []


@pytest.mark.parametrize("member", ["x5t", "x5t#S256"])
def test_certificate_thumbprint_headers_are_refused(env: Env, member: str) -> None:
    token = forge.es_sign(env.header(**{member: forge.b64url(b"\x01" * 32)}), claims(), env.private_key)
    assert_refused(env.call(token), "forbidden-header")


def test_crit_header_is_refused(env: Env) -> None:
    token = forge.es_sign(env.header(crit=["exp"], exp=0), claims(), env.private_key)
    assert_refused(env.call(token), "forbidden-header")


# -- required claims, signed correctly by the vault key ----------------------------------------


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub", "iat"])
def test_missing_required_claim_is_refused(env: Env, claim: str) -> None:
    assert_refused(env.call(env.sign(claims(**{claim: DROP}))), f"missing-{claim}")


# -- time ----------------------------------------------------------------------------------------


def test_expired_beyond_leeway_is_refused(env: Env) -> None:
    now = int(time.time())
    stale = claims(iat=now - 600, nbf=now - 600, exp=now - LEEWAY_SECONDS - 30)
    assert_refused(env.call(env.sign(stale)), "expired")


def test_expired_within_leeway_is_accepted(env: Env) -> None:
    """Positive control: 30 s of clock skew is tolerated."""
    now = int(time.time())
    assert_accepted(env.call(env.sign(claims(iat=now - 600, nbf=now - 600, exp=now - LEEWAY_SECONDS + 15))))


def test_nbf_in_future_beyond_leeway_is_refused(env: Env) -> None:
    now = int(time.time())
    assert_refused(env.call(env.sign(claims(nbf=now + LEEWAY_SECONDS + 90))), "not-yet-valid")


def test_iat_in_future_beyond_leeway_is_refused(env: Env) -> None:
    now = int(time.time())
    future = claims(iat=now + LEEWAY_SECONDS + 90, nbf=DROP, exp=now + 900)
    assert_refused(env.call(env.sign(future)), "iat-in-future")


def test_nbf_and_iat_slightly_in_future_are_accepted(env: Env) -> None:
    """Positive control: a clock a few seconds ahead of ours is tolerated."""
    now = int(time.time())
    assert_accepted(env.call(env.sign(claims(iat=now + 10, nbf=now + 10))))


def test_lifetime_longer_than_allowed_is_refused(env: Env) -> None:
    now = int(time.time())
    assert_refused(env.call(env.sign(claims(iat=now, exp=now + MAX_TOKEN_LIFETIME + 60))), "lifetime-too-long")


def test_lifetime_at_limit_is_accepted(env: Env) -> None:
    now = int(time.time())
    assert_accepted(env.call(env.sign(claims(iat=now, exp=now + MAX_TOKEN_LIFETIME))))


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("exp", "9999999999", "bad-time-claims"),
        ("iat", True, "bad-time-claims"),
        ("exp", float(int(time.time()) + 600) + 0.5, "bad-time-claims"),
        ("iat", str(int(time.time())), "bad-time-claims"),
        ("nbf", "0", "not-yet-valid"),
    ],
    ids=["exp-string", "iat-boolean", "exp-float", "iat-string", "nbf-string"],
)
def test_non_integer_time_claim_is_refused(env: Env, claim: str, value: object, reason: str) -> None:
    assert_refused(env.call(env.sign(claims(**{claim: value}))), reason)


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [("exp", "[1]"), ("exp", "null"), ("exp", "1e999"), ("exp", "{}"), ("iat", "null"), ("nbf", "[]")],
)
def test_malformed_time_claim_is_refused_not_500(env: Env, claim: str, fragment: str) -> None:
    """Values python-jose's int() chokes on with TypeError / OverflowError (a 500 before the fix)."""
    token = forge.es_sign(env.header(), raw_claims(**{claim: fragment}), env.private_key)
    assert_refused(env.call(token), "bad-claims")


# -- audience, issuer, subject -------------------------------------------------------------------


@pytest.mark.parametrize(
    "aud", ["other-service", "citizen-vault-evil", "Citizen-Vault", "", ["other-service"], []], ids=repr
)
def test_wrong_audience_is_refused(env: Env, aud: object) -> None:
    assert_refused(env.call(env.sign(claims(aud=aud))), "wrong-audience")


@pytest.mark.parametrize("aud", [None, 42, [AUDIENCE, 42]], ids=repr)
def test_malformed_audience_is_refused(env: Env, aud: object) -> None:
    assert_refused(env.call(env.sign(claims(aud=aud))), "bad-claims")


def test_audience_list_containing_ours_is_accepted(env: Env) -> None:
    assert_accepted(env.call(env.sign(claims(aud=["other-service", AUDIENCE]))))


@pytest.mark.parametrize(
    "iss",
    [
        "https://attacker.example",
        "http://127.0.0.1",
        "http://127.0.0.1:8000/",
        "HTTP://127.0.0.1:8000",
        "http://127.0.0.1:80000",
        [ISSUER],
        None,
    ],
    ids=["other", "prefix", "trailing-slash", "case", "suffix", "list", "null"],
)
def test_wrong_issuer_is_refused(env: Env, iss: object) -> None:
    assert_refused(env.call(env.sign(claims(iss=iss))), "wrong-issuer")


@pytest.mark.parametrize(("sub", "reason"), [(42, "wrong-subject"), ("", "bad-subject"), ("s" * 300, "bad-subject")])
def test_bad_subject_is_refused(env: Env, sub: object, reason: str) -> None:
    assert_refused(env.call(env.sign(claims(sub=sub))), reason)


# -- size and parsing ----------------------------------------------------------------------------


def test_16kb_token_is_refused(env: Env) -> None:
    token = env.sign(claims(pad="x" * 16 * 1024))
    assert len(token) > 16 * 1024
    assert_refused(env.call(token), "token-too-large")


def test_deeply_nested_header_is_refused(env: Env) -> None:
    header = ('{"alg":"ES256","kid":"k","x":' + "[" * 2000 + "]" * 2000 + "}").encode()
    assert_refused(env.call(forge.assemble(header, claims(), forge.b64url(b"sig"))), "malformed")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c",
        "!!.!!.!!",
        "e30.e30.e30",
        "W10.e30.AAAA",
        "bnVsbA.e30.AAAA",
        "/w.e30.AAAA",
        "e30=.e30.AA",
    ],
)
def test_garbage_tokens_are_refused_not_500(env: Env, token: str) -> None:
    response = env.call(token)
    assert response.status_code == 401, response.text
    assert AUDIT_CODE.fullmatch(response.json()["reason"])


# -- key rollover --------------------------------------------------------------------------------


def test_rollover_previous_key_verifies_until_retired(env: Env) -> None:
    """Positive control for rollover, then retirement wins even over a cached verification."""
    old_kid = env.kid
    old_token = env.issue()
    assert_accepted(env.call(old_token))  # verified once: now cached
    new_kid = env.vault.signing.rotate()
    assert new_kid != old_kid
    assert_accepted(env.call(old_token))  # issued before the rollover: still valid
    new_token = env.issue()
    assert json.loads(forge.b64url_decode(new_token.split(".")[0]))["kid"] == new_kid
    assert_accepted(env.call(new_token))
    env.vault.signing.retire(old_kid)
    assert_refused(env.call(old_token), "unknown-kid")
    assert_accepted(env.call(new_token))


def test_token_signed_by_retired_key_is_refused(env: Env) -> None:
    old_kid, old_key = env.kid, env.private_key
    env.vault.signing.rotate()
    env.vault.signing.retire(old_kid)
    assert_refused(env.call(forge.es_sign(env.header(kid=old_kid), claims(), old_key)), "unknown-kid")
    assert_refused(env.call(forge.es_sign(env.header(), claims(), old_key)), "bad-signature")


def test_retirement_by_another_process_is_honoured(env: Env) -> None:
    """The CLI or another worker rotates and retires: this process must stop accepting the old key."""
    old_kid, old_key = env.kid, env.private_key
    old_token = env.issue()
    assert_accepted(env.call(old_token))
    other = SigningKeyring(env.vault.signing.path, None)
    other.rotate()
    other.retire(old_kid)
    assert_refused(env.call(old_token), "unknown-kid")
    assert_refused(env.call(forge.es_sign(env.header(kid=old_kid), claims(), old_key)), "unknown-kid")


# -- roles ---------------------------------------------------------------------------------------


def test_role_removed_after_issue_is_forbidden(env: Env) -> None:
    token = env.issue()
    assert_accepted(env.call(token))
    env.vault.registry.unassign(REGISTRAR, AGENCY, "registrar")
    response = env.call(token)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["reason"].startswith("role-not-held")


@pytest.mark.parametrize("role", ["superuser", "Registrar", "", ["registrar"], DROP], ids=repr)
def test_unknown_role_claim_is_refused(env: Env, role: object) -> None:
    assert_refused(env.call(env.sign(claims(role=role))), "unknown-role")


# -- external identity provider ------------------------------------------------------------------


def test_external_issuer_token_is_accepted(idp: Idp) -> None:
    assert_accepted(idp.env.call(forge.es_sign(idp.header(), idp.claims(), idp.key)))


def test_external_kid_signed_by_vault_key_is_refused(idp: Idp) -> None:
    token = forge.es_sign(idp.header(), idp.claims(), idp.env.private_key)
    assert_refused(idp.env.call(token), "bad-signature")


def test_external_issuer_claims_under_vault_kid_are_refused(idp: Idp) -> None:
    """Issuer confusion: the vault's key decides the issuer, whatever ``iss`` says."""
    token = forge.es_sign(idp.env.header(), idp.claims(aud=AUDIENCE), idp.env.private_key)
    assert_refused(idp.env.call(token), "wrong-issuer")


def test_vault_claims_under_external_kid_are_refused(idp: Idp) -> None:
    """An identity provider cannot speak as the vault (``iss``) or for another audience."""
    token = forge.es_sign(idp.header(), claims(aud=IDP_AUDIENCE), idp.key)
    assert_refused(idp.env.call(token), "wrong-issuer")
    token = forge.es_sign(idp.header(), idp.claims(aud=AUDIENCE), idp.key)
    assert_refused(idp.env.call(token), "wrong-audience")


def test_unusable_external_key_is_refused_not_500(idp: Idp) -> None:
    """A malformed EC key in a configured JWKS made python-jose raise JWKError (a 500 before the fix)."""
    token = forge.es_sign(idp.header(kid=IDP_BROKEN_KID), idp.claims(), idp.key)
    assert_refused(idp.env.call(token), "unusable-key")


def test_symmetric_key_in_external_jwks_is_never_used(idp: Idp) -> None:
    """An oct key in an IdP's JWKS: HS256 is refused by name, and ES256 cannot use it either."""
    token = forge.hs_sign(idp.header(kid=IDP_OCT_KID, alg="HS256"), idp.claims(), IDP_OCT_SECRET)
    assert_refused(idp.env.call(token), "alg-not-allowed")
    token = forge.es_sign(idp.header(kid=IDP_OCT_KID), idp.claims(), idp.key)
    assert_refused(idp.env.call(token), "unusable-key")


def test_external_issuer_cannot_mint_agency_app_tokens(idp: Idp) -> None:
    """Agency apps authenticate to the vault only: an IdP token naming a client id is not that client."""
    client, secret = idp.env.vault.registry.create_client(AGENCY, "Lookup app")
    forged = forge.es_sign(idp.header(), idp.claims(sub=client.client_id, role="agency-app"), idp.key)
    assert_refused(idp.env.call(forged), "role-not-from-issuer")
    # Positive control: the client's own token from POST /v1/token is accepted.
    grant = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}
    response = idp.env.client.post("/v1/token", data=grant)
    assert response.status_code == 200, response.text
    assert_accepted(idp.env.call(response.json()["access_token"]))


# -- TokenVerifier cache -------------------------------------------------------------------------


def _count_jose_decode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count calls of python-jose's decode as api.security.tokens makes them."""
    calls: list[str] = []
    assert vars(tokens)["jwt"] is jose_jwt
    real = jose_jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr("api.security.tokens.jwt.decode", counting)
    return calls


def _verifier(env: Env, clock: Callable[[], float] = time.time) -> TokenVerifier:
    return TokenVerifier([issuing.vault_issuer(env.vault.signing, ISSUER, AUDIENCE, MAX_TOKEN_LIFETIME)], clock)


def test_verifier_cache_skips_python_jose_on_second_verify(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_jose_decode(monkeypatch)
    verifier = _verifier(env)
    token = env.issue()
    first = verifier.verify(token)
    second = verifier.verify(token)
    assert second == first and second.subject == REGISTRAR
    assert len(calls) == 1
    verifier.forget()
    verifier.verify(token)
    assert len(calls) == 2


def test_app_verifies_a_repeated_token_with_python_jose_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_jose_decode(monkeypatch)
    token = env.issue()
    for _ in range(3):
        assert_accepted(env.call(token))
    assert calls == [token]


def test_verifier_cache_refuses_expired_cached_token(env: Env) -> None:
    now = [time.time()]
    verifier = _verifier(env, lambda: now[0])
    token = env.issue(ttl=120)
    assert verifier.verify(token).subject == REGISTRAR
    now[0] += 120 + LEEWAY_SECONDS - 5
    assert verifier.verify(token).subject == REGISTRAR  # within the leeway: still served
    now[0] += 10
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(token)
    assert refused.value.reason == "expired"


def test_verifier_cache_refuses_token_of_retired_key(env: Env) -> None:
    verifier = _verifier(env)
    old_kid = env.kid
    token = env.issue()
    verifier.verify(token)
    env.vault.signing.rotate()
    assert verifier.verify(token).subject == REGISTRAR
    env.vault.signing.retire(old_kid)
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(token)
    assert refused.value.reason == "unknown-kid"
