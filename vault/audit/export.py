"""Audit export for SIEMs and external verifiers: JSON Lines (verifiable) or CSV (for people).

JSON Lines: a header line (format, filter, the checkpoint public keys), one line per event with its
``prev_hash`` and ``hash``, and a last line with the checkpoint signed at export time. An
unfiltered export is verified end to end by :func:`verify_export` with nothing but the public key:
re-walk the chain, check the checkpoint's signature and that it signs the last hash. A filtered
export proves each event individually (its hash matches its content and stated predecessor).

CSV: the same columns, text escaped for spreadsheets and log tools (CR/LF as ``\\r``/``\\n``;
a cell starting with = + - @ gets a leading apostrophe), so it is for reading, not verifying.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from vault.audit import chain
from vault.audit.log import AuditLog, Checkpoint
from vault.audit.review import EventFilter, StoredEvent, iter_events
from vault.audit.verify import Finding, Report, Row, check_checkpoints, walk

EXPORT_FORMAT = "citizen-vault-audit-export/1"
CSV_COLUMNS = ("seq", *chain.EVENT_COLUMNS, "prev_hash", "hash")


def _values(e: StoredEvent) -> list[Any]:
    return [
        e.ts,
        e.actor,
        e.role,
        e.agency,
        e.action,
        e.citizen_id,
        json.dumps(e.fields, separators=(",", ":")),
        e.purpose,
        e.grant_id,
        e.outcome,
        e.reason,
        e.request_id,
    ]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def export(
    log: AuditLog,
    destination: Path,
    fmt: Literal["jsonl", "csv"],
    flt: EventFilter,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Checkpoint]:
    """Write matching events up to a checkpoint signed now (mode 0600); returns (count, checkpoint)."""
    cp = log.checkpoint()
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            header = {"format": EXPORT_FORMAT, "filter": flt.public(), "public_keys": log.signer.public_keys_b64()}
            fh.write(json.dumps(header) + "\n")
        writer = csv.writer(fh) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        for e in iter_events(log.engine, flt, up_to=cp.count):
            if writer is not None:
                writer.writerow([_cell(v) for v in (e.seq, *_values(e), e.prev_hash, e.hash)])
            else:
                fh.write(json.dumps(e.public(), ensure_ascii=True) + "\n")
            count += 1
            if progress and count % 10_000 == 0:
                progress(10_000)
        if fmt == "jsonl":
            fh.write(json.dumps({"checkpoint": cp.public()}) + "\n")
    if progress:
        progress(count % 10_000)
    return count, cp


def _read_export(fh: IO[str]) -> tuple[dict[str, Any], list[Row], Checkpoint]:
    header = json.loads(fh.readline())
    if header.get("format") != EXPORT_FORMAT:
        raise ValueError("not a Citizen Vault audit export (JSON Lines)")
    rows: list[Row] = []
    cp: Checkpoint | None = None
    for line in fh:
        item = json.loads(line)
        if "checkpoint" in item:
            c = item["checkpoint"]
            cp = Checkpoint(
                int(c["count"]), bytes.fromhex(c["head_hash"]), c["ts"], c["kid"], bytes.fromhex(c["signature"])
            )
            continue
        event = StoredEvent(**item)
        rows.append(Row(event.seq, _values(event), bytes.fromhex(event.prev_hash), bytes.fromhex(event.hash)))
    if cp is None:
        raise ValueError("the export has no checkpoint line (truncated?)")
    return header, rows, cp


def verify_export(path: Path, public_keys: dict[str, bytes] | None = None) -> Report:
    """Verify an export with the public key(s) alone (by default, those the export names)."""
    with path.open(encoding="utf-8") as fh:
        header, rows, cp = _read_export(fh)
    keys = public_keys or {k: base64.b64decode(v) for k, v in header.get("public_keys", {}).items()}
    if header.get("filter"):
        return _verify_filtered(rows, cp, keys)
    return walk(_iter(rows), [cp], keys, total=len(rows), expected_total=cp.count)


def _iter(rows: list[Row]) -> Iterator[Row]:
    yield from rows


def _verify_filtered(rows: list[Row], cp: Checkpoint, keys: dict[str, bytes]) -> Report:
    report = Report(events=len(rows), checkpoints=1)
    report.finding = check_checkpoints([cp], keys)
    for row in rows:
        if report.finding is not None:
            break
        if row.seq > cp.count or chain.link(row.prev_hash, row.values) != row.hash:
            report.finding = Finding(row.seq, "edited", f"event {row.seq} does not match its hash")
    return report
