"""A vault with generated interaction facts and an insight service on a fixed clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_helpers import backend_settings
from tests.support.insights_helpers import NOW
from vault.audit.log import Actor
from vault.insights.service import InsightService
from vault.runtime import Vault, init_vault, open_vault
from vault.settings import Settings

ANALYST = Actor("analyst@vault", "analyst", "vault", "req-insights-1")


def insight_settings(request: pytest.FixtureRequest, root: Path, backend: str, **extra: Any) -> Settings:
    """Settings for a fresh vault on ``backend`` whose rollups are rebuilt on every query."""
    base = backend_settings(request, root, backend)
    return base.model_copy(update={"insights_refresh_seconds": 0, **extra})


def open_insights(settings: Settings, *, create: bool = True) -> tuple[Vault, InsightService]:
    """The vault (created or opened) and an insight service whose clock stands at NOW."""
    vault = init_vault(settings) if create else open_vault(settings)
    return vault, InsightService(vault.data_engine, vault.audit, settings, clock=lambda: NOW)
