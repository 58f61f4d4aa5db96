"""Operations: liveness, readiness, the vault's public keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "A store or the keys are unavailable", "content": {"application/json": {}}}},
)
def readyz(request: Request) -> JSONResponse:
    """Both stores answer and the keys are usable; 503 otherwise."""
    vault = request.app.state.vault
    checks: dict[str, str] = {}
    for name, engine in (("data_store", vault.data_engine), ("key_store", vault.key_engine)):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks[name] = "ok"
        except Exception:
            checks[name] = "unavailable"
    try:
        vault.provider.active_version()
        vault.signing.active()
        checks["keys"] = "ok"
    except Exception:
        checks["keys"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not-ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/.well-known/jwks.json")
def jwks(request: Request) -> dict[str, Any]:
    """Public keys that verify the vault's tokens (current and not yet retired)."""
    result: dict[str, Any] = request.app.state.vault.signing.jwks()
    return result
