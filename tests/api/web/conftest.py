"""Fixtures of the page tests: a web world per test (tests/support/web_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web_world import WebWorld, open_web_world


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebWorld]:
    with open_web_world(tmp_path, monkeypatch) as w:
        yield w
