"""Operations: liveness, readiness, metrics, the vault's public keys (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import metrics as metrics_module
from api.errors import problem
from vault import health

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (liveness: restart it when this fails)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "A store, the keys, the audit log or the policy is unavailable",
            "content": {"application/json": {}},
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Data store, key store, keys, audit log writable, policy loaded; 503 with the reasons otherwise."""
    vault = request.app.state.vault
    checks: dict[str, Callable[[], None]] = {
        "data_store": lambda: health.store_answers(vault.data_engine),
        "key_store": lambda: health.store_answers(vault.key_engine),
        "keys": lambda: health.keys_usable(vault),
        "audit": lambda: health.audit_writable(vault),
        "policy": lambda: _policy_loaded(request),
    }
    results: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name, check in checks.items():
        reason = await run_in_threadpool(health.reason_of, check)  # database round trips: off the loop
        results[name] = "ok" if reason is None else "unavailable"
        if reason is not None:
            reasons[name] = reason
        observed: metrics_module.Metrics | None = getattr(request.app.state, "metrics", None)
        if observed is not None:
            observed.ready.labels(name).set(1 if reason is None else 0)
    ready = not reasons
    body: dict[str, Any] = {"status": "ready" if ready else "not-ready", "checks": results}
    if reasons:
        body["reasons"] = reasons
    headers = None if ready else {"Retry-After": str(health.RETRY_AFTER_SECONDS)}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


def _policy_loaded(request: Request) -> None:
    if not request.app.state.guard.policy.rules():
        raise health.NotReady("no policy lines loaded")


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format; only for addresses in `metrics_allowed_networks` (default: loopback)."""
    client = request.client.host if request.client else None
    if not metrics_module.allowed(client, request.app.state.settings.metrics_allowed_networks):
        return problem(
            request,
            403,
            "metrics-network",
            "Not from a metrics network",
            "scrape from an allowed network",
            reason="metrics-network",
        )
    observed: metrics_module.Metrics = request.app.state.metrics
    return Response(observed.exposition(), media_type=metrics_module.CONTENT_TYPE)


@router.get("/.well-known/jwks.json")
def jwks(request: Request) -> dict[str, Any]:
    """Public keys that verify the vault's tokens (current and not yet retired)."""
    result: dict[str, Any] = request.app.state.vault.signing.jwks()
    return result
