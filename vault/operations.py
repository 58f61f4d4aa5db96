"""Operator operations: counts, export, backup, schema upgrade."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from keys import migrate
from vault import db
from vault.errors import CannotDecrypt
from vault.models import blind_index, citizens
from vault.profiles import records
from vault.runtime import Vault

EXPORT_FORMAT = "citizen-vault-export/1"


def count_citizens(vault: Vault) -> int:
    """How many citizens (active and erased) the data store holds."""
    with vault.data_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(citizens)) or 0)


def upgrade(vault: Vault) -> None:
    """Apply pending migrations to both stores."""
    migrate.upgrade_keystore(vault.key_engine)
    db.upgrade(vault.data_engine)


@dataclass
class ExportResult:
    """How many citizens were written, and which (by vault id) could not be decrypted and were skipped."""

    written: int = 0
    skipped: list[uuid.UUID] = field(default_factory=list)


def export(
    vault: Vault, destination: Path, decrypted: bool, progress: Callable[[int], None] | None = None
) -> ExportResult:
    """Write every citizen as JSON Lines (mode 0600). Encrypted by default: the records, provenance
    and blind-index digests exactly as stored, readable only with this vault's keys; with
    ``decrypted``, plaintext values (for migration out of the vault; handle as the most sensitive file).

    One ordered pass: citizens and blind-index entries are both read sorted by citizen id and merged,
    so the cost is linear in the store (a query per citizen made it quadratic: the blind index has no
    index on the citizen id, on purpose, for import speed). A citizen whose data cannot be decrypted
    (erased after a backup was taken, say) is skipped and reported, never the end of the export.
    """
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above only applies to a new file: tighten an existing one too
    result = ExportResult()
    seen = 0
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        header = {"format": EXPORT_FORMAT, "encrypted": not decrypted, "exported_at": datetime.now(UTC).isoformat()}
        fh.write(json.dumps(header) + "\n")
        with vault.data_engine.connect() as conn, conn.begin():  # one snapshot for both streams
            rows = conn.execution_options(yield_per=1000).execute(select(citizens).order_by(citizens.c.id))
            index = _Peekable(iter(())) if decrypted else _index_stream(conn)
            for row in rows:
                seen += 1
                entries = _take(index, row.id)
                line = _line(vault, row, entries, decrypted)
                if line is None:
                    result.skipped.append(row.id)
                else:
                    fh.write(json.dumps(line) + "\n")
                    result.written += 1
                if progress and seen % 1000 == 0:
                    progress(1000)
    if progress:
        progress(seen % 1000)
    return result


_Entry = tuple[uuid.UUID, str, bytes]


class _Peekable:
    """An ordered stream of blind-index entries with one entry of look-ahead."""

    def __init__(self, rows: Iterator[_Entry]) -> None:
        self._rows = rows
        self.head: _Entry | None = next(rows, None)

    def pop(self) -> _Entry | None:
        current, self.head = self.head, next(self._rows, None)
        return current


def _index_stream(conn: Connection) -> _Peekable:
    query = select(blind_index.c.citizen_id, blind_index.c.field, blind_index.c.digest).order_by(
        blind_index.c.citizen_id, blind_index.c.field
    )
    rows = conn.execution_options(yield_per=5000).execute(query)
    return _Peekable((cid, f, bytes(d)) for cid, f, d in rows)


def _take(index: _Peekable, citizen: uuid.UUID) -> list[tuple[str, bytes]]:
    """The entries of ``citizen``, dropping any of citizens before it (rows without a profile)."""
    out: list[tuple[str, bytes]] = []
    while index.head is not None and index.head[0] <= citizen:
        entry = index.pop()
        if entry is not None and entry[0] == citizen:
            out.append((entry[1], entry[2]))
    return out


def _line(vault: Vault, row: Any, entries: list[tuple[str, bytes]], decrypted: bool) -> dict[str, Any] | None:
    prov = records.decode_provenance(row.provenance)
    base = {
        "id": str(row.id),
        "status": row.status,
        "created_at": records.aware(row.created_at).isoformat(),
        "provenance": {
            n: {"source_agency": p.source_agency, "updated_at": p.updated_at.isoformat(), "hold_basis": p.hold_basis}
            for n, p in prov.items()
        },
    }
    if decrypted:
        try:
            base["fields"] = vault.profiles.read(row.id, action="citizens.export").values
        except CannotDecrypt:  # audited by read(); the caller reports the id
            return None
        return base
    sealed = records.unpack(row.id, row.record)
    base["dek_version"] = row.dek_version
    base["fields"] = {n: base64.b64encode(b).decode() for n, b in sealed.items()}
    base["index"] = [{"field": f, "digest": base64.b64encode(d).decode()} for f, d in entries]
    return base
