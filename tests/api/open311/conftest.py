"""The Open311 tests' world: a fresh vault served over HTTP with one application key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.open311_client import Open311World, open311_world


@pytest.fixture
def o(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Open311World]:
    with open311_world(tmp_path, monkeypatch) as world:
        yield world
