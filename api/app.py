"""The FastAPI application factory. Nothing is built at import time: create_app(settings) does it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import docs, errors, openapi, tracing, web
from api.express import GrantReadExpress
from api.metrics import Metrics
from api.middleware import Hygiene
from api.observe import Observe
from api.routes import (
    audit,
    citizens,
    consents,
    grants,
    insights,
    interactions,
    open311,
    ops,
    pii,
    purposes,
    registry,
    representations,
    requests,
    token,
)
from api.scans import ScanQueue
from api.security import tokens
from api.security.auth import Guard
from api.security.issuing import vault_issuer
from api.security.limits import Limits, SourceLimit, Summariser
from api.security.policy import PolicyEngine
from api.settings import AppSettings, ExternalIssuer
from api.shield import SecurityHeaders, TrustedHosts, allowed_hosts
from keys.sqlstore import is_sqlite
from vault.errors import ConfigurationError
from vault.insights.refresher import Refresher
from vault.insights.service import InsightService
from vault.runtime import Vault, open_vault, settle_heap
from vault.settings import POLICIES_DIR

MAX_TOKEN_LIFETIME = 3600  # longest token accepted from the vault itself (operator-minted ones included)
PUBLIC_PATHS = (
    frozenset({"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/v1/token"}) | open311.PUBLIC_PATHS
)


def _external(issuer: ExternalIssuer, max_lifetime: int) -> tokens.Issuer:
    try:
        document = json.loads(issuer.jwks_file.read_text())
        keys = {k["kid"]: dict(k) for k in document["keys"] if isinstance(k, dict) and "kid" in k}
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigurationError(f"JWKS of issuer {issuer.issuer} unreadable: {issuer.jwks_file}") from None
    return tokens.Issuer(issuer.issuer, issuer.audience, keys.get, max_lifetime)


def create_app(settings: AppSettings, vault: Vault | None = None) -> FastAPI:
    """Build the app: open the vault, load keys and policy (fail closed), wire routes and errors."""
    vault = vault or open_vault(settings)
    policy = PolicyEngine(POLICIES_DIR / "model.conf", POLICIES_DIR / "policy.csv")
    issuers = [vault_issuer(vault.signing, settings.issuer, settings.audience, MAX_TOKEN_LIFETIME)]
    issuers += [_external(e, 3600) for e in settings.external_issuers]
    guard = Guard(
        tokens.TokenVerifier(issuers),
        vault.registry,
        policy,
        Limits.from_settings(settings),
        settings.issuer,
        list(settings.external_issuers),
        inline_checks=is_sqlite(vault.data_engine),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        vault.background_checkpoints()
        summariser.start()
        scans.start()
        refresher.start()  # keeps the insights rollups fresh (docs/insights.md)
        settle_heap()
        yield
        summariser.stop()  # writes every pending aggregate of refusals
        scans.close()
        refresher.stop()
        vault.close()

    app = FastAPI(
        title="Citizen Vault",
        version="1.0",
        description="Encrypted citizen profiles, consent and audited, purpose-bound access.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs from pinned files, under the CSP
        redoc_url=None,
        redirect_slashes=False,  # a redirect would be built from the client's Host header, before auth
        # FastAPI's own OpenTelemetry spans, metrics and logs record url.path (citizen and grant ids) as
        # soon as any tracer provider exists: off; api/tracing.py emits spans with codes only.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.vault = vault
    app.state.inline_writes = is_sqlite(vault.data_engine)  # see api/concurrency.py
    app.state.settings = settings
    app.state.guard = guard
    app.state.insights = InsightService(vault.data_engine, vault.audit, vault.settings)  # docs/insights.md
    refresher = Refresher(app.state.insights)
    app.state.metrics = metrics = Metrics()  # api/metrics.py, docs/operations.md
    metrics.instrument(vault)
    if settings.tracing:
        tracing.instrument(vault, policy)  # api/tracing.py: off by default
    app.state.summariser = summariser = Summariser(lambda: guard.limits, vault.audit)
    app.state.pii_scans = scans = ScanQueue(
        settings.pii_scan_workers, settings.pii_scans_per_caller, settings.pii_scan_queue
    )
    errors.install(app)
    openapi.install(app)
    # Hottest first: matching is a linear scan over every route (about 40 before a grant read in
    # alphabetical-ish order). No request can match two routes (tests/api/test_route_order.py).
    for router in (
        grants.router,
        citizens.router,
        interactions.router,
        consents.router,
        audit.router,
        token.router,
        purposes.router,
        registry.router,
        pii.router,
        insights.router,
        ops.router,
        requests.router,
        representations.router,
    ):
        app.include_router(router)
    docs.install(app)  # after the API routes: matching scans routes in order
    web.install(app, settings)  # the pages (issue 14), after the API too
    open311.install(app, settings)  # GeoReport v2 (issue 15), after the pages: it wraps their error hook

    if settings.express_reads and app.state.inline_writes and is_sqlite(vault.key_engine):
        app.add_middleware(GrantReadExpress)  # added first, so inside Hygiene: its checks come first
    app.add_middleware(TrustedHosts, hosts=allowed_hosts(settings.allowed_hosts, settings.issuer))
    app.add_middleware(SourceLimit)  # every request charged to its address before any token is read
    # request.state reads scope["state"], where Hygiene puts the request id.
    app.add_middleware(Hygiene, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # Hygiene's own refusals get the headers too
    app.add_middleware(Observe, metrics=metrics)  # every answer is logged and counted
    if settings.tracing:
        app.add_middleware(tracing.Traced)  # outermost: the request's span holds all the others
    return app
