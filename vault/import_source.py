"""Reading import files: formats, digests, line items and per-line parse errors (never values)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from vault.errors import ValidationFailed

Format = Literal["jsonl", "csv"]
MAX_LINE_BYTES = 1_000_000
_BLOCK = 1 << 22  # bytes read at a time when finding where batches begin


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
    obj = _json_object(raw)
    if obj is None:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return LineError(number, {"line": "not valid JSON"})
    if not isinstance(obj, dict):
        return LineError(number, {"line": "not a JSON object of field names to values"})
    return obj


_decode = json.JSONDecoder().raw_decode  # json.loads's decoder, with the same (default) options


def _json_object(raw: bytes) -> Any:
    """``json.loads(raw)`` for the usual line, an object in UTF-8 starting at its first byte, at
    about half the cost (json.loads also detects the encoding and skips leading whitespace); None
    for any other line, which json.loads then reads (and refuses) itself."""
    if raw[:1] != b"{" or raw[1:2] == b"\0":  # "{" then a zero byte would be UTF-16-LE to json.loads
        return None
    try:
        text = raw.decode("utf-8", "surrogatepass")
        obj, end = _decode(text)
    except (ValueError, RecursionError):
        return None
    if text[end:].strip(" \t\n\r"):  # json.loads allows only this whitespace after the value
        return None
    return obj


class Span(NamedTuple):
    """Lines ``first``..``last`` of a JSON Lines file, at bytes [start, end): a batch that an import
    worker reads from the file itself, so the writer process only finds where batches begin."""

    path: str
    start: int
    end: int
    first: int
    last: int


def _line_ends(fh: IO[bytes]) -> Iterator[int]:
    """The offset just past each line (its newline, or the end of a last line without one)."""
    base = 0
    tail = False
    for block in iter(lambda: fh.read(_BLOCK), b""):
        pos = 0
        find = block.find
        while (nl := find(b"\n", pos)) >= 0:
            pos = nl + 1
            yield base + pos
        base += len(block)
        tail = pos < len(block)
    if tail:
        yield base


def jsonl_spans(path: Path, size: int, after_line: int = 0) -> Iterator[Span]:
    """The lines after ``after_line`` of a JSON Lines file, ``size`` lines a batch (blank ones included)."""
    name = str(path)
    start = prev_end = number = 0
    first: int | None = None
    with path.open("rb") as fh:
        for number, end in enumerate(_line_ends(fh), start=1):
            if number > after_line:
                if first is None:
                    start, first = prev_end, number
                if number - first + 1 == size:
                    yield Span(name, start, end, first, number)
                    first = None
            prev_end = end
    if first is not None:
        yield Span(name, start, prev_end, first, number)


def read_span(span: Span) -> list[RawItem]:
    """(line number, raw line) of a span's non-blank lines, as :func:`read_items` yields them."""
    with open(span.path, "rb") as fh:
        fh.seek(span.start)
        data = fh.read(span.end - span.start)
    items: list[RawItem] = []
    pos, size, find = 0, len(data), data.find
    for number in range(span.first, span.last + 1):
        nl = find(b"\n", pos)
        stop = size if nl < 0 else nl + 1
        raw = data[pos:stop]
        if raw.strip():
            items.append((number, raw))
        pos = stop
    return items


Batch = Span | Sequence[RawItem]  # what a worker is given: a span of a JSON Lines file, or CSV rows


def batch_items(batch: Batch) -> Sequence[RawItem]:
    """The items of a batch (a span is read from the file)."""
    return read_span(batch) if isinstance(batch, Span) else batch


def batch_extent(batch: Batch) -> tuple[int, int]:
    """(last line number, how many lines) of a non-empty batch: the checkpoint and the progress."""
    if isinstance(batch, Span):
        return batch.last, batch.last - batch.first + 1
    return batch[-1][0], len(batch)
