"""A test app for the real server: the service's app plus one route that fails unexpectedly with a
value in its message, to see what the server logs (tests/api/test_server_logs.py)."""

from __future__ import annotations

from fastapi import FastAPI

from api.asgi import app as service_app

VALUE = "900-000-417"  # fictitious national id


def app() -> object:
    """The service's ASGI app, built as `serve` builds it, with a failing route mounted."""
    built = service_app()
    inner = built
    while not isinstance(inner, FastAPI):  # under the server's outer layers (api/asgi.py)
        inner = inner.app  # type: ignore[attr-defined]

    @inner.get("/boom")
    async def boom() -> None:
        raise ValueError(f"national id {VALUE} is not accepted")

    return built
