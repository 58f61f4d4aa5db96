"""Fixtures of the end-to-end browser tests (tests/support/browser.py)."""

from tests.support.browser import browser, demo_server, playwright_driver, web

__all__ = ["browser", "demo_server", "playwright_driver", "web"]
