"""Keeps the rollups fresh from a background thread of each server process (docs/insights.md).

Every ``insights_refresh_seconds`` it asks the service to refresh; the service's claim on the one
refresh row lets a single process do the work while the others find it done. A failed refresh is
logged and tried again at the next tick: queries keep answering from the rollups as they are.
"""

from __future__ import annotations

import logging
import threading

from vault.insights.service import InsightService

log = logging.getLogger(__name__)


class Refresher:
    """A daemon thread calling ``service.refresh()`` at the configured interval (0: never)."""

    def __init__(self, service: InsightService) -> None:
        self.service = service
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start ticking (a first refresh at once), unless refreshing happens before each query."""
        if self.service.settings.insights_refresh_seconds == 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="insights-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for a refresh in progress to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        interval = self.service.settings.insights_refresh_seconds
        while not self._stop.is_set():
            try:
                self.service.refresh()
            except Exception as exc:  # any failure (the database briefly away...): the thread must live on
                log.warning("insights refresh failed; trying again later", extra={"cause": type(exc).__name__})
            self._stop.wait(interval)
