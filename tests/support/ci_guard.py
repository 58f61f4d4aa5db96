"""pytest plugin: with CI=true a skipped test is a failed test.

A test whose dependency is missing must never pass silently in CI. Fixtures already fail instead
of skipping when CI=true; this guard catches any skip that slips through (a new fixture, a
library's own pytest.importorskip, a skip marker).
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI", "").lower() == "true" and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
    return None
