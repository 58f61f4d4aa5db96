"""The HTTP server `citizen-vault serve` runs: uvicorn with its httptools protocol, bounded.

uvicorn's httptools protocol accepts headers of any size and number, waits for them for ever, and
answers a request it cannot parse with a plain-text 400. :class:`BoundedHttpProtocol` subclasses
it (nothing is patched) to cap the bytes of the request line and headers, the number of headers and
the time they take to arrive, and to answer its own refusals (400, 408, 431) with the same RFC 9457
problem document, request id and no-store header as the app. Production still belongs behind a
reverse proxy with its own limits (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api import logconfig
from api.errors import problem_document
from api.settings import AppSettings
from api.shield import SECURITY_HEADERS

log = logging.getLogger("uvicorn.error")

# status -> (type slug, title, detail)
_REFUSALS = {
    400: ("bad-request", "Bad request", "the request could not be parsed as HTTP/1.1"),
    408: ("header-timeout", "Request headers too slow", "send the request line and headers at once"),
    431: ("headers-too-large", "Request headers too large", "send fewer or shorter headers"),
}


def problem_bytes(status: int) -> bytes:
    """A complete HTTP/1.1 response carrying a problem document; the connection is closed after it."""
    slug, title, detail = _REFUSALS[status]
    request_id = uuid.uuid4().hex
    # The path is not known (or not to be trusted) when the request could not be parsed: instance "".
    body = json.dumps(problem_document(status, slug, title, detail, "", request_id)).encode()
    reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", request_id.encode()),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
    ]
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason) + b"".join(b"%s: %s\r\n" % pair for pair in headers)
    return head + b"\r\n" + body


@functools.cache
def _limits() -> tuple[int, int, float]:
    # Read once per worker process from the same environment the app's settings come from
    # (`serve` exports --data-dir): uvicorn builds protocols from a class, so they cannot take arguments.
    s = AppSettings()
    return s.max_header_bytes, s.max_headers, s.header_timeout_seconds


class _Refused(Exception):
    """Raised from a parser callback to stop parsing: the request breaks a limit."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits and problem+json refusals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.max_headers, self.header_timeout = _limits()
        self._reading_headers = True  # until the first request's headers are complete
        self._header_bytes = 0  # bytes received while reading the current request's headers
        self._header_count = 0
        self._refusal: int | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept a connection; it must send a request line and headers in time (an idle one too)."""
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its timer."""
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, counting header bytes first: an unfinished header never grows past the cap."""
        # While headers are read, feed at most what the cap still allows: one read often holds the
        # headers and the start of the body (a proxy writes both at once), and body bytes must not
        # count as header bytes, or a body over the cap would be refused as 431.
        while data and self._reading_headers:
            if self._refusal is not None:
                return
            room = self.max_header_bytes - self._header_bytes
            if room <= 0:
                self._refuse(431)
                return
            head, data = data[:room], data[room:]
            self._header_bytes += len(head)
            super().data_received(head)
        if data and self._refusal is None:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparseable request (or one stopped by a limit), as a problem document."""
        self._refuse(self._refusal or 400)

    # Parser callbacks

    def on_message_begin(self) -> None:
        """A request starts: its headers are counted and timed from here."""
        super().on_message_begin()
        self._reading_headers = True
        self._header_count = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        """Count the request line toward the header cap (a chunk may hold all of it at once)."""
        super().on_url(url)
        if len(self.url) > self.max_header_bytes:
            self._stop(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header."""
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._stop(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """Headers in: stop the timer; the body is the app's (its size is capped there)."""
        self._disarm_header_timer()
        self._reading_headers = False
        self._header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The next bytes on this connection are the next request's headers."""
        super().on_message_complete()
        self._reading_headers = True

    def on_response_complete(self) -> None:
        """Between requests the keep-alive timeout applies, not the header one."""
        super().on_response_complete()
        self._disarm_header_timer()

    # Refusals

    def _stop(self, status: int) -> None:
        self._refusal = status
        raise _Refused  # httptools stops parsing and raises HttpParserCallbackError from feed_data

    def _refuse(self, status: int) -> None:
        self._refusal = status
        self._disarm_header_timer()
        log.warning("request refused by the server", extra={"status": status})
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(status))
            self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._reading_headers:
            return
        if self._header_bytes or self.headers:  # a request began: say why it is closed
            self._refuse(408)
        else:
            self.transport.close()


# uvicorn's own loggers, through the JSON formatter; its access log stays off: a query string may
# hold a national id or an email (lookups), and request ids already tie answers to events.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": logconfig.JsonFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def run(app: str, *, host: str, port: int, workers: int, settings: AppSettings) -> None:
    """Serve the ASGI app factory ``app`` ("module:function") with the bounded protocol and JSON logs."""
    import uvicorn  # noqa: PLC0415 - only the server needs it

    proxies = settings.trusted_proxies
    assert httptools  # the protocol below is httptools' (pinned in pyproject); h11 would not be bounded
    uvicorn.run(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpProtocol,
        log_config=LOG_CONFIG,
        log_level="warning",
        access_log=False,
        # X-Forwarded-* is believed only from configured proxies (uvicorn would trust 127.0.0.1 by default).
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) if proxies else "",
        server_header=False,
        # Idle keep-alive connections close after this (uvicorn's default, stated here with the other limits).
        timeout_keep_alive=5,
    )
