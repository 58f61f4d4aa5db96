"""ASGI entry point for uvicorn workers: `uvicorn --factory api.asgi:app` (settings from the environment)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import logconfig
from api.app import create_app
from api.settings import AppSettings
from api.shield import SecurityHeaders

INTERNAL = (
    b'{"type":"https://citizen-vault.example/problems/internal","title":"Internal error","status":500,'
    b'"detail":"the error was logged","request_id":null}'
)


class Contained:
    """The outermost layer: an exception never reaches the server.

    Starlette answers an unexpected exception (api/errors.py logs its type, one JSON line) and then
    re-raises it so that the server can log it too; uvicorn's log line would carry the traceback,
    and a traceback quotes values. Here it stops: answered already, or answered now (500,
    problem+json), and logged once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status: int | None = None  # of the response started, if any

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if scope["type"] != "http":
                raise  # lifespan: uvicorn reports it (as JSON, type only) and refuses to start
            # A 500 was started by the app's handler, which logged the type (api/errors.py); any other
            # outcome (an exception after a response began, or before the app's handlers) is logged here.
            if status != 500:
                logconfig.log_exception("unexpected error outside the app's handlers", exc)
            if status is None:
                headers = [(b"content-type", b"application/problem+json"), (b"content-length", b"%d" % len(INTERNAL))]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": INTERNAL})


def app() -> ASGIApp:
    """Build the app from CITIZEN_VAULT_* environment variables."""
    logconfig.configure()
    return Contained(SecurityHeaders(create_app(AppSettings())))
