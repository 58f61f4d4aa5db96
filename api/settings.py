"""Settings of the HTTP interface, on top of the vault's own (same CITIZEN_VAULT_ prefix)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from vault.settings import Settings


class ExternalIssuer(BaseModel):
    """An identity provider whose tokens the vault accepts (national login, government directory)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    issuer: str = Field(description="Exact `iss` value.")
    audience: str = Field(description="The `aud` its tokens must carry for the vault.")
    jwks_file: Path = Field(description="Its public keys (JWKS JSON); keys are never fetched from token headers.")
    role_claim: str = Field(default="role", description="Claim holding the role.")
    agency_claim: str = Field(default="agency", description="Claim holding the agency (officers).")
    subject_prefix: str = Field(default="", description="Prefix added to `sub` to keep issuers' subjects apart.")


class AppSettings(Settings):
    """Every knob of the HTTP service."""

    issuer: str = Field(default="http://127.0.0.1:8000", description="The vault's own token issuer (`iss`).")
    audience: str = Field(default="citizen-vault", description="Audience every accepted token must name.")
    token_ttl_seconds: int = Field(default=900, ge=60, le=3600, description="Lifetime of tokens the vault issues.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Largest request body accepted (413 above).")
    rate_limit_per_minute: int = Field(default=600, ge=1, description="Requests per minute per client or subject.")
    auth_failures_per_minute: int = Field(
        default=120,
        ge=1,
        description="Refused requests (401, 403, 429) per minute per caller (the client address before "
        "authentication, the subject after) that are audited one by one; past it they are refused alike and "
        "identical refusals are counted into one aggregate audit event a minute.",
    )
    source_requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Requests per minute per client address (an IPv6 address by its /64), counted before "
        "authentication; default ten times rate_limit_per_minute and at least 6,000.",
    )
    token_failures_per_minute: int = Field(
        default=10,
        ge=1,
        description="Failed client logins (/v1/token) per minute per client and address (429 past it).",
    )
    token_source_failures_per_minute: int = Field(
        default=30, ge=1, description="Failed client logins per minute per address, whatever the client (429 past it)."
    )
    token_issues_per_minute: int = Field(
        default=60, ge=1, description="Tokens issued per minute per client (a correct secret is refused only past it)."
    )
    token_pressure_per_minute: int = Field(
        default=30,
        ge=1,
        description="Failed logins per minute for one client, from any addresses, past which a "
        "token.lockout-pressure audit event (and compliance flag) is raised, once per spell.",
    )
    pii_scan_workers: int = Field(default=2, ge=1, le=64, description="Threads that run PII scans (their own pool).")
    pii_scans_per_caller: int = Field(
        default=2, ge=1, description="PII scans one caller may have queued or running (429 past it)."
    )
    pii_scan_queue: int = Field(default=32, ge=1, description="PII scans queued or running in all (503 past it).")
    express_reads: bool = Field(
        default=True,
        description="Serve small grant pages on the express lane (api/express.py) on the embedded SQLite; "
        "off, every request goes through the framework's route (same answers, more CPU).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Proxy addresses whose X-Forwarded-For is believed; none by default."
    )
    external_issuers: list[ExternalIssuer] = Field(
        default_factory=list, description="Identity providers for citizens and officers (JSON list)."
    )
    # OpenID Connect sign-in for the web pages (api/security/oidc.py, docs/web.md); off while oidc_issuer is unset.
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the identity provider for web sign-in (https; http only on loopback). Its "
        "discovery document, token endpoint and JWKS must all be on this origin: nothing else is fetched.",
    )
    oidc_client_id: str | None = Field(default=None, description="The vault's client id at that provider.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="The vault's client secret at that provider (client_secret_basic)."
    )
    oidc_redirect_url: str | None = Field(
        default=None, description="Absolute URL of /login/oidc/callback as registered at the provider."
    )
    oidc_scopes: list[str] = Field(default=["openid", "profile"], description="Scopes asked for ('openid' first).")
    oidc_role_claim: str = Field(default="role", description="ID token claim holding the role.")
    oidc_agency_claim: str = Field(default="agency", description="ID token claim holding the agency (officers).")
    oidc_default_role: str | None = Field(
        default=None,
        description="Role of a person whose ID token has no role claim (`citizen` for a national login); "
        "unset, such a sign-in is refused.",
    )
    oidc_subject_prefix: str = Field(
        default="",
        description="Prefix added to `sub` (as ExternalIssuer.subject_prefix); a citizen's prefixed subject "
        "must be their citizen id.",
    )
    oidc_provider_name: str = Field(
        default="your identity provider", description="The provider's name on the sign-in button."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the service answers for (the Host header); other hosts get a 400. Empty: the "
        "issuer's host plus localhost, 127.0.0.1 and ::1.",
    )
    max_header_bytes: int = Field(
        default=32_768,
        ge=1024,
        le=1_048_576,
        description="Largest request line plus headers the server reads (431 above); a reverse proxy should "
        "cap them lower (docs/deployment.md).",
    )
    max_headers: int = Field(default=100, ge=10, le=1000, description="Most request headers accepted (431 above).")
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Time a connection has to send its request line and headers (408, then closed).",
    )
    demo_login: bool = Field(
        default=False,
        description="The development sign-in page listing the demo people (`citizen-vault serve --demo`); "
        "refused with environment=production.",
    )
    session_idle_seconds: int = Field(
        default=900, ge=60, le=86_400, description="A web session ends after this long without a request."
    )
    session_absolute_seconds: int = Field(
        default=28_800, ge=300, le=604_800, description="A web session ends this long after sign-in, whatever."
    )
    web_logins_per_minute: int = Field(
        default=30, ge=1, description="Sign-in attempts per minute per client address (429 past it)."
    )
    open311_creates_per_key_minute: int = Field(
        default=120, ge=1, description="Open311 requests created per minute per application key (429 past it)."
    )
    open311_creates_per_source_minute: int = Field(
        default=10, ge=1, description="Open311 creation attempts per minute per client address (429 past it)."
    )
    metrics_allowed_networks: list[str] = Field(
        default=["127.0.0.1/32", "::1/128"],
        description="Client networks (CIDR) that may read /metrics (403 otherwise); default loopback only. Behind "
        "a reverse proxy the client is the proxy unless it is in trusted_proxies (docs/operations.md).",
    )
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans (request, policy check, key unwrap, audit append, database statements) "
        "through the OpenTelemetry API; an SDK and exporter must be installed to send them (docs/operations.md).",
    )

    @model_validator(mode="after")
    def _demo_login_is_development_only(self) -> AppSettings:
        if self.demo_login and self.environment == "production":
            raise ValueError("demo_login is for development only: it cannot be enabled in production")
        return self
