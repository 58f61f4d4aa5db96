"""Operator operations: counts, export, backup, schema upgrade."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from keys import migrate
from vault import db
from vault.errors import ConfigurationError
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


def export(vault: Vault, destination: Path, decrypted: bool, progress: Callable[[int], None] | None = None) -> int:
    """Write every citizen as JSON Lines (mode 0600). Encrypted by default: the records, provenance
    and blind-index digests exactly as stored, readable only with this vault's keys; with
    ``decrypted``, plaintext values (for migration out of the vault; handle as the most sensitive file).
    """
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above only applies to a new file: tighten an existing one too
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        header = {"format": EXPORT_FORMAT, "encrypted": not decrypted, "exported_at": datetime.now(UTC).isoformat()}
        fh.write(json.dumps(header) + "\n")
        with vault.data_engine.connect() as conn:
            rows = conn.execution_options(yield_per=1000).execute(select(citizens).order_by(citizens.c.id))
            for row in rows:
                fh.write(json.dumps(_line(vault, conn, row, decrypted)) + "\n")
                count += 1
                if progress and count % 1000 == 0:
                    progress(1000)
    if progress:
        progress(count % 1000)
    return count


def _line(vault: Vault, conn: Any, row: Any, decrypted: bool) -> dict[str, Any]:
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
        base["fields"] = vault.profiles.read(row.id, action="citizens.export").values
        return base
    sealed = records.unpack(row.id, row.record)
    base["dek_version"] = row.dek_version
    base["fields"] = {n: base64.b64encode(b).decode() for n, b in sealed.items()}
    index = conn.execute(select(blind_index.c.field, blind_index.c.digest).where(blind_index.c.citizen_id == row.id))
    base["index"] = [{"field": f, "digest": base64.b64encode(d).decode()} for f, d in index]
    return base


def backup_data(vault: Vault, destination: Path) -> None:
    """Consistent online copy of an SQLite data store (PostgreSQL: use pg_dump; see docs/operations.md)."""
    url = make_url(vault.settings.resolved_database_url())
    if url.get_backend_name() != "sqlite" or not url.database:
        raise ConfigurationError("`backup` copies the embedded SQLite store; for PostgreSQL use pg_dump")
    if destination.exists():
        raise ConfigurationError(f"{destination} already exists")
    source = sqlite3.connect(url.database)
    fd = os.open(destination, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)
    target = sqlite3.connect(destination)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
