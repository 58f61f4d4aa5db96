"""Structured logging: one JSON object per line on stderr. Never given field values.

An exception is logged by its type only: its message and a traceback's lines can quote submitted
values (a parser error repeating its input). The server's own loggers use the same formatter
(api/server.py), and uncaught exceptions in any thread go through :func:`log_exception`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
log = logging.getLogger("citizen_vault")


class JsonFormatter(logging.Formatter):
    """Formats records as JSON; extra= keys become fields; newlines cannot forge log lines.

    An attached exception becomes its type name (`exception`); never its message or traceback.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage().strip(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


def log_exception(message: str, exc: BaseException) -> None:
    """Log an exception as one line: its type, never its message or traceback."""
    log.error(message, extra={"exception": type(exc).__name__})


def _uncaught(kind: type[BaseException], exc: BaseException, _tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return
    log_exception("uncaught exception", exc)


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        log_exception("uncaught exception in a thread", args.exc_value)


def configure(level: int = logging.WARNING) -> None:
    """Send JSON logs to stderr and uncaught exceptions through them (idempotent)."""
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
