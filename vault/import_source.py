"""Reading import files: formats, digests, line items and per-line parse errors (never values)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vault.errors import ValidationFailed

Format = Literal["jsonl", "csv"]
MAX_LINE_BYTES = 1_000_000


@dataclass(frozen=True)
class LineError:
    """Why one input line was rejected (field -> reason; never a value)."""

    line: int
    problems: dict[str, str]


RawItem = tuple[int, "bytes | dict[str, Any] | LineError"]


def detect_format(path: Path) -> Format:
    """JSON Lines for .jsonl/.ndjson/.json, CSV for .csv."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValidationFailed({"file": f"unknown format {suffix[:16]!r}: use .jsonl or .csv, or pass --format"})


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_lines(path: Path) -> int:
    """Number of lines, for progress bars."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def read_items(path: Path, fmt: Format) -> Iterator[RawItem]:
    """Yield (line number, raw JSON line | CSV row | parse error). Blank lines are skipped."""
    with path.open("rb") as fh:
        if fmt == "jsonl":
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield number, raw
            return
        reader = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""), strict=True)
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    yield line, LineError(line, {"line": "wrong number of columns"})
                    continue
                yield line, {k: v for k, v in row.items() if v != ""}
        except (csv.Error, UnicodeDecodeError) as exc:
            line = reader.line_num
            yield line, LineError(line, {"line": f"unreadable CSV ({exc.__class__.__name__})"})


def parse_item(number: int, raw: bytes | dict[str, Any] | LineError) -> dict[str, Any] | LineError:
    """One item as field name -> raw value, or why the line is unreadable."""
    if isinstance(raw, (dict, LineError)):
        return raw
    if len(raw) > MAX_LINE_BYTES:
        return LineError(number, {"line": f"longer than {MAX_LINE_BYTES} bytes"})
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return LineError(number, {"line": "not valid JSON"})
    if not isinstance(obj, dict):
        return LineError(number, {"line": "not a JSON object of field names to values"})
    return obj
