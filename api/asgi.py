"""ASGI entry point for uvicorn workers: `uvicorn --factory api.asgi:app` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from api import logconfig
from api.app import create_app
from api.settings import AppSettings


def app() -> FastAPI:
    """Build the app from CITIZEN_VAULT_* environment variables."""
    logconfig.configure()
    return create_app(AppSettings())
