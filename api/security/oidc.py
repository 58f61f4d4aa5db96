"""OpenID Connect sign-in for the web pages: authorization code flow with PKCE (S256), state and nonce.

Authlib's OAuth2 client builds the authorization URL (code challenge from the verifier) and exchanges
the code at the token endpoint; the ID token is NOT accepted by Authlib: api.security.tokens (the one
python-jose module) verifies it with the same ES256 allow-list and required claims as the API's
tokens, the issuer exact, the audience the client id, and the nonce this sign-in sent.

Only the configured issuer is ever contacted: its discovery document, then the token endpoint and
JWKS it names, which must be on the issuer's own origin (scheme, host, port). The JWKS is cached and
fetched again when a token names an unknown key id, at most once a minute. Every failure is an
OidcRefused with a short reason code for the audit log; nothing half-done signs anyone in.

Between /login/oidc and the callback the browser keeps a PendingLogin (state, nonce, code verifier,
where to return) in a short-lived HttpOnly cookie; see api/web/oidc.py for why it needs no signature.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

with warnings.catch_warnings():
    # Authlib 1.9 warns on import that httpx will be renamed httpx2 upstream; printed by the warnings
    # module, it was the one line of a server's stderr that was not JSON (api/logconfig.py).
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

from api.security import tokens
from api.security.auth import Principal
from api.security.policy import NO_OWNER
from api.settings import AppSettings
from vault.errors import ConfigurationError
from vault.registry import ROLES

PENDING_SECONDS = 600  # a sign-in at the provider must finish within ten minutes
DISCOVERY_SECONDS = 3600  # the discovery document and JWKS are fetched again after an hour
JWKS_MIN_INTERVAL = 60.0  # an unknown key id fetches the JWKS again at most once a minute
MAX_DOCUMENT_BYTES = 65_536
HTTP_TIMEOUT = 5.0
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9]{43,128}")  # generate_token's alphabet; a PKCE verifier's length
# OAuth 2.0 error codes (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6) recorded as they are; any other is "other"
_PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "login_required",
        "consent_required",
        "interaction_required",
        "account_selection_required",
    }
)


class OidcRefused(Exception):
    """The sign-in cannot go on; ``reason`` is a stable code for the audit log and the problem answer."""

    def __init__(self, reason: str, unavailable: bool = False) -> None:
        self.reason = reason
        self.unavailable = unavailable  # the provider could not be reached or answered nonsense (503, not 401)
        super().__init__(reason)


@dataclass(frozen=True)
class PendingLogin:
    """What the browser keeps between the redirect to the provider and the callback."""

    state: str
    nonce: str
    verifier: str
    next: str
    created: int

    def encode(self) -> str:
        """The cookie value (base64url JSON)."""
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None, now: float) -> PendingLogin:
        """The pending sign-in a cookie holds, if well-formed and recent; raises OidcRefused otherwise."""
        if not text:
            raise OidcRefused("no-pending-sign-in")
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            pending = cls(**data)
        except (binascii.Error, ValueError, TypeError):
            raise OidcRefused("bad-pending-sign-in") from None
        values = (pending.state, pending.nonce, pending.verifier)
        if not all(isinstance(v, str) and _TOKEN_CHARS.fullmatch(v) for v in values):
            raise OidcRefused("bad-pending-sign-in")
        if not isinstance(pending.next, str) or not isinstance(pending.created, int):
            raise OidcRefused("bad-pending-sign-in")
        if not 0 <= now - pending.created <= PENDING_SECONDS:
            raise OidcRefused("sign-in-expired")
        return pending


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcConfig:
    """The settings one sign-in needs, checked once."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str
    scopes: tuple[str, ...]
    role_claim: str
    agency_claim: str
    default_role: str | None
    subject_prefix: str

    @classmethod
    def from_settings(cls, settings: AppSettings) -> OidcConfig | None:
        """None when OIDC sign-in is off; ConfigurationError when it is half or wrongly configured."""
        if settings.oidc_issuer is None:
            return None
        secret = settings.oidc_client_secret
        if not settings.oidc_client_id or secret is None or not settings.oidc_redirect_url:
            raise ConfigurationError("oidc_issuer needs oidc_client_id, oidc_client_secret and oidc_redirect_url")
        for name, url in (("oidc_issuer", settings.oidc_issuer), ("oidc_redirect_url", settings.oidc_redirect_url)):
            scheme, host, _ = _origin(url)
            if not host or not (scheme == "https" or (scheme == "http" and _loopback(host))):
                raise ConfigurationError(f"{name} must be https (http only on a loopback address)")
        if "openid" not in settings.oidc_scopes:
            raise ConfigurationError("oidc_scopes must include openid")
        if settings.oidc_default_role is not None and settings.oidc_default_role not in ROLES:
            raise ConfigurationError("oidc_default_role is not a known role")
        return cls(
            settings.oidc_issuer.rstrip("/"),
            settings.oidc_client_id,
            secret.get_secret_value(),
            settings.oidc_redirect_url,
            tuple(settings.oidc_scopes),
            settings.oidc_role_claim,
            settings.oidc_agency_claim,
            settings.oidc_default_role,
            settings.oidc_subject_prefix,
        )


class OidcClient:
    """One configured provider: starts sign-ins and finishes them into a Principal."""

    def __init__(
        self,
        config: OidcConfig,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._transport = transport  # tests only; production uses httpx's own
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, dict[str, str]] = {}
        self._jwks_at: float | None = None  # last fetch attempt
        issuer = tokens.Issuer(config.issuer, config.client_id, self._key, max_lifetime=3600)
        self._verifier = tokens.TokenVerifier([issuer], clock=clock, cache_size=256)

    def now(self) -> float:
        """The clock sign-ins and ID tokens are checked against."""
        return self._clock()

    # -- the flow ------------------------------------------------------------------------------
    def begin(self, next_path: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL and what the browser must keep until the callback."""
        metadata = self.metadata()
        pending = PendingLogin(
            generate_token(43), generate_token(43), generate_token(64), next_path, int(self._clock())
        )
        with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending.state,
                code_verifier=pending.verifier,
                nonce=pending.nonce,
            )
        return str(url), pending

    def finish(self, pending: PendingLogin, params: Mapping[str, str]) -> Principal:
        """Check the callback against the pending sign-in, exchange the code, verify the ID token, map it."""
        state = params.get("state") or ""
        if not hmac.compare_digest(state.encode("utf-8", "replace"), pending.state.encode()):
            raise OidcRefused("wrong-state")
        metadata = self.metadata()
        iss = params.get("iss")  # RFC 9207: the answer names its issuer (mix-up defence)
        if iss is not None and iss.rstrip("/") != self.config.issuer:
            raise OidcRefused("wrong-issuer-parameter")
        if iss is None and metadata.get("authorization_response_iss_parameter_supported") is True:
            raise OidcRefused("missing-issuer-parameter")
        error = params.get("error")
        if error is not None:
            raise OidcRefused(f"provider-{error if error in _PROVIDER_ERRORS else 'other'}")
        code = params.get("code")
        if not code or len(code) > 2048:
            raise OidcRefused("missing-code")
        id_token, access_token = self._exchange(metadata["token_endpoint"], code, pending.verifier)
        return self.principal(self.verify_id_token(id_token, pending.nonce, access_token))

    def principal(self, verified: tokens.VerifiedToken) -> Principal:
        """The person an ID token names, by the same rules as the API's external issuers (auth.Guard.identify)."""
        claims = verified.claims
        role = claims.get(self.config.role_claim, self.config.default_role)
        if not isinstance(role, str) or role not in ROLES or role == "agency-app":  # apps never sign in to pages
            raise OidcRefused("unknown-role")
        subject = self.config.subject_prefix + verified.subject
        if role == "citizen":
            try:  # a citizen's subject is their citizen id, as the API's /v1/me reads it
                subject = str(uuid.UUID(subject))
            except ValueError:
                raise OidcRefused("citizen-not-mapped") from None
            return Principal(subject, role, NO_OWNER, verified.issuer)
        agency = claims.get(self.config.agency_claim)
        if not isinstance(agency, str) or not agency or len(agency) > 64:
            raise OidcRefused("bad-agency")
        return Principal(subject, role, agency, verified.issuer)

    def verify_id_token(self, id_token: str, nonce: str, access_token: str | None = None) -> tokens.VerifiedToken:
        """The ID token's claims if it passes every check; raises OidcRefused otherwise."""
        try:
            return tokens.verify_id_token(self._verifier, id_token, self.config.client_id, nonce, access_token)
        except tokens.TokenRejected as exc:
            raise OidcRefused(f"id-token-{exc.reason}") from None

    # -- the provider ---------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched from the issuer itself and checked; cached an hour."""
        with self._lock:
            if self._metadata is not None and self._clock() - self._metadata_at < DISCOVERY_SECONDS:
                return self._metadata
        document = self._get_json(self.config.issuer + "/.well-known/openid-configuration")
        if document.get("issuer") != self.config.issuer:  # OIDC Discovery 4.3: exactly the configured issuer
            raise OidcRefused("discovery-wrong-issuer", unavailable=True)
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            url = document.get(name)
            if not isinstance(url, str) or _origin(url) != _origin(self.config.issuer):
                raise OidcRefused("discovery-foreign-endpoint", unavailable=True)
        if "S256" not in (document.get("code_challenge_methods_supported") or ()):
            raise OidcRefused("provider-without-pkce", unavailable=True)
        if tokens.ALGORITHMS[0] not in (document.get("id_token_signing_alg_values_supported") or ()):
            raise OidcRefused("provider-algorithm-not-allowed", unavailable=True)
        with self._lock:
            self._metadata, self._metadata_at = document, self._clock()
        return document

    def _key(self, kid: str) -> Mapping[str, str] | None:
        """The issuer's public key ``kid``; an unknown kid refetches the JWKS, at most once a minute."""
        now = self._clock()
        with self._lock:
            age = None if self._jwks_at is None else now - self._jwks_at
            if age is not None and (age < JWKS_MIN_INTERVAL or (kid in self._jwks and age < DISCOVERY_SECONDS)):
                return self._jwks.get(kid)
            self._jwks_at = now
        try:
            document = self._get_json(self.metadata()["jwks_uri"])
            keys = {
                k["kid"]: dict(k) for k in document["keys"] if isinstance(k, dict) and isinstance(k.get("kid"), str)
            }
        except (OidcRefused, KeyError, TypeError):
            with self._lock:  # fail closed: keys that could not be refreshed are not trusted any longer
                self._jwks = {}
            return None
        with self._lock:
            self._jwks = keys
        return keys.get(kid)

    def _exchange(self, token_endpoint: str, code: str, verifier: str) -> tuple[str, str | None]:
        """The ID token (and access token) the token endpoint gives for ``code`` and the PKCE verifier."""
        try:
            with self._oauth() as oauth:
                answer = oauth.fetch_token(
                    token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                    redirect_uri=self.config.redirect_url,
                )
        except OAuthError as exc:
            error = exc.error if exc.error in _PROVIDER_ERRORS else "other"
            raise OidcRefused(f"token-endpoint-{error}") from None
        except (httpx.HTTPError, ValueError):
            raise OidcRefused("token-endpoint-unavailable", unavailable=True) from None
        id_token = answer.get("id_token") if isinstance(answer, Mapping) else None
        if not isinstance(id_token, str):
            raise OidcRefused("no-id-token")
        access_token = answer.get("access_token")
        return id_token, access_token if isinstance(access_token, str) else None

    def _oauth(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name, not a secret
            scope=" ".join(self.config.scopes),
            redirect_uri=self.config.redirect_url,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT,
            follow_redirects=False,  # a redirect could lead off the issuer's origin
            trust_env=False,  # no proxy or netrc from the environment: the issuer, directly
            transport=self._transport,
        )

    def _get_json(self, url: str) -> dict[str, Any]:
        """A JSON object from the issuer's origin, bounded in size and time; OidcRefused otherwise."""
        if _origin(url) != _origin(self.config.issuer):
            raise OidcRefused("foreign-url", unavailable=True)
        try:
            with (
                httpx.Client(
                    timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False, transport=self._transport
                ) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise OidcRefused("provider-unavailable", unavailable=True)
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise OidcRefused("provider-document-too-large", unavailable=True)
            document = json.loads(body)
        except (httpx.HTTPError, ValueError):
            raise OidcRefused("provider-unavailable", unavailable=True) from None
        if not isinstance(document, dict):
            raise OidcRefused("provider-unavailable", unavailable=True)
        return document
