"""Audit export for SIEMs and external verifiers: JSON Lines (verifiable) or CSV (for people).

JSON Lines: a header line (format, filter, the checkpoint public keys), one line per event with its
``prev_hash`` and ``hash``, and a last line with the checkpoint signed at export time and an
Ed25519 signature over the SHA-256 of every line before it (so the header's filter, and which
events a filtered export holds, cannot be changed afterwards). :func:`verify_export` needs nothing
but the public key: it checks the file signature and the checkpoint, then, for an unfiltered
export, re-walks the whole chain up to the checkpoint; for a filtered one, each event's hash.

CSV: the same columns, text escaped for spreadsheets and log tools (CR/LF as ``\\r``/``\\n``;
a cell starting with = + - @ gets a leading apostrophe), so it is for reading, not verifying.

The command line writes the file it is given; the HTTP export (:func:`export_for_download`) writes
the very same file, bounded, into an unlinked temporary file and streams that: one implementation.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from keys.audit_signing import verify as verify_signature
from vault.audit import chain
from vault.audit.log import Actor, AuditLog, Checkpoint, Event
from vault.audit.review import EventFilter, StoredEvent, iter_events
from vault.audit.verify import Finding, Report, Row, check_checkpoints, walk
from vault.errors import ValidationFailed

EXPORT_FORMAT = "citizen-vault-audit-export/1"
FILE_SIGNATURE_PREFIX = b"citizen-vault-audit-export-file/1\n"
CSV_COLUMNS = ("seq", *chain.EVENT_COLUMNS, "prev_hash", "hash")
HTTP_MAX_EVENTS = 200_000  # events one HTTP export may hold (about 100 MB of JSON Lines); the CLI has no bound


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


def csv_cell(value: Any) -> str:
    """One CSV cell, safe for spreadsheets: CR/LF escaped, a leading = + - @ or tab neutralised by an apostrophe."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def _file_message(digest: bytes, cp: Checkpoint) -> bytes:
    return FILE_SIGNATURE_PREFIX + digest + chain.checkpoint_message(cp.count, cp.head_hash, cp.ts)


def export(
    log: AuditLog,
    destination: Path,
    fmt: Literal["jsonl", "csv"],
    flt: EventFilter,
    progress: Callable[[int], None] | None = None,
    max_events: int | None = None,
) -> tuple[int, Checkpoint]:
    """Write matching events up to a checkpoint signed now (mode 0600); returns (count, checkpoint).

    With ``max_events``, more matching events than that raise ValidationFailed (the file is then
    incomplete and unsigned: the caller discards it)."""
    cp = log.checkpoint()
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    count = 0
    digest = hashlib.sha256()

    def line(item: dict[str, Any]) -> None:
        text = json.dumps(item, ensure_ascii=True) + "\n"
        digest.update(text.encode("ascii"))
        fh.write(text)

    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            line({"format": EXPORT_FORMAT, "filter": flt.public(), "public_keys": log.signer.public_keys_b64()})
        writer = csv.writer(fh) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        for e in iter_events(log.engine, flt, up_to=cp.count):
            if max_events is not None and count >= max_events:
                raise ValidationFailed(
                    {"filters": f"more than {max_events} events match: narrow them (since, until, action)"}
                )
            if writer is not None:
                writer.writerow([csv_cell(v) for v in (e.seq, *_values(e), e.prev_hash, e.hash)])
            else:
                line(e.public())
            count += 1
            if progress and count % 10_000 == 0:
                progress(10_000)
        if fmt == "jsonl":
            signature = log.signer.sign(_file_message(digest.digest(), cp))
            signed = {"kid": log.signer.kid, "signature": signature.hex()}
            fh.write(json.dumps({"checkpoint": cp.public(), "file_signature": signed}) + "\n")
    if progress:
        progress(count % 10_000)
    return count, cp


def describe(fmt: str, flt: EventFilter, count: int) -> str:
    """The ``audit.export`` event's reason: the format, how many events and the filter (ids and codes)."""
    given = " ".join(f"{k}={v}" for k, v in flt.public().items())
    return f"{count} events, {fmt}" + (f", filter {given}" if given else ", unfiltered")


@dataclass(frozen=True)
class Download:
    """A finished export in an already unlinked file (nothing is left behind, whatever the client does)."""

    file: IO[bytes]
    count: int
    checkpoint: Checkpoint

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        """The file's bytes, then close it."""
        try:
            while chunk := self.file.read(size):
                yield chunk
        finally:
            self.file.close()


def export_for_download(
    log: AuditLog, actor: Actor, fmt: Literal["jsonl", "csv"], flt: EventFilter, workdir: Path
) -> Download:
    """:func:`export` (at most HTTP_MAX_EVENTS events) into a private temporary file in ``workdir``,
    audited as ``audit.export`` with its filter before any byte is handed out (no audit, no data)."""
    fd, name = tempfile.mkstemp(prefix=".audit-export-", dir=workdir)
    os.close(fd)
    path = Path(name)
    try:
        count, cp = export(log, path, fmt, flt, max_events=HTTP_MAX_EVENTS)
        fh = path.open("rb")
    finally:
        path.unlink(missing_ok=True)
    try:
        log.record(actor, Event("audit.export", reason=describe(fmt, flt, count)[:300]))
    except BaseException:
        fh.close()
        raise
    return Download(fh, count, cp)


@dataclass(frozen=True)
class _Export:
    header: dict[str, Any]
    rows: list[Row]
    checkpoint: Checkpoint
    digest: bytes  # SHA-256 of every line before the last
    file_kid: str
    file_signature: bytes


def _read_export(fh: IO[bytes]) -> _Export:
    lines = fh.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < 2:
        raise ValueError("the export is empty or truncated")
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ValueError("not a Citizen Vault audit export (JSON Lines)")
    digest = hashlib.sha256()
    rows: list[Row] = []
    for raw in lines[:-1]:
        digest.update(raw + b"\n")
    for raw in lines[1:-1]:
        event = StoredEvent(**json.loads(raw))
        rows.append(Row(event.seq, _values(event), bytes.fromhex(event.prev_hash), bytes.fromhex(event.hash)))
    last = json.loads(lines[-1])
    c, f = last["checkpoint"], last["file_signature"]
    cp = Checkpoint(int(c["count"]), bytes.fromhex(c["head_hash"]), c["ts"], c["kid"], bytes.fromhex(c["signature"]))
    return _Export(header, rows, cp, digest.digest(), str(f["kid"]), bytes.fromhex(f["signature"]))


def verify_export(path: Path, public_keys: dict[str, bytes] | None = None) -> Report:
    """Verify an export with the public key(s) alone (by default, those the export names)."""
    with path.open("rb") as fh:
        export = _read_export(fh)
    header, rows, cp = export.header, export.rows, export.checkpoint
    keys = public_keys or {k: base64.b64decode(v) for k, v in header.get("public_keys", {}).items()}
    if header.get("filter"):
        report = _verify_filtered(rows, cp, keys)
    else:
        report = walk(iter(rows), [cp], keys, total=len(rows), expected_total=cp.count)
    # Events are checked first so that an edit is named; the file signature then catches what the
    # chain cannot see in a filtered export (a changed filter, events added or left out).
    file_key = keys.get(export.file_kid)
    if report.ok and (
        file_key is None or not verify_signature(file_key, _file_message(export.digest, cp), export.file_signature)
    ):
        report.finding = Finding(0, "export-altered", "the file's signature does not verify: it changed after export")
    return report


def _verify_filtered(rows: list[Row], cp: Checkpoint, keys: dict[str, bytes]) -> Report:
    report = Report(events=len(rows), checkpoints=1)
    report.finding = check_checkpoints([cp], keys)
    for row in rows:
        if report.finding is not None:
            break
        if row.seq > cp.count or chain.link(row.prev_hash, row.values) != row.hash:
            report.finding = Finding(row.seq, "edited", f"event {row.seq} does not match its hash")
    return report
