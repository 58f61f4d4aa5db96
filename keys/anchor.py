"""The audit anchor: a copy, kept in the key store, of the audit log's newest committed signed
checkpoint (docs/audit.md, "Rollback").

Someone who can write the data store could replay an old audit head record and delete every event
and checkpoint after it: the log would verify, rolled back. The key store is a separate database,
kept apart from the data store and its backups (docs/keys.md), so the anchor is a later signed
checkpoint outside the data store's reach: `audit verify` refuses a log that ends before it or
does not hold it. The anchor only moves forward. It holds no secret: a checkpoint is public and
signed, and its signature is checked against the audit signing keys.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from keys.sqlstore import WouldWait, take_write_lock_now

log = logging.getLogger(__name__)

anchor_metadata = MetaData()

audit_anchor = Table(
    "audit_anchor",
    anchor_metadata,
    Column("id", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("head_hash", LargeBinary(32), nullable=False),
    Column("ts", String(32), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class Anchored:
    """A signed checkpoint as the anchor holds it."""

    count: int
    head_hash: bytes
    ts: str
    kid: str
    signature: bytes


class AuditAnchor:
    """Reads and advances the anchor row of one key store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self) -> Anchored | None:
        """The anchored checkpoint, or None before the first one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_anchor).where(audit_anchor.c.id == 1)).one_or_none()
        if row is None:
            return None
        m = row._mapping  # row.count would be the tuple method
        return Anchored(int(m["count"]), bytes(m["head_hash"]), str(m["ts"]), str(m["kid"]), bytes(m["signature"]))

    def advance(self, checkpoint: Anchored) -> bool:
        """Store ``checkpoint`` unless the anchor already holds a later one (never moves back).

        Never waits for the key store's write lock: the caller holds the data store's, sometimes on
        the server's event loop. When another writer has the key store (a data-key write, another
        process's anchor), this advance is skipped and False returned; the next checkpoint carries
        the anchor on. Any other failure raises (the caller's append then fails: no audit, no data).
        """
        values = asdict(checkpoint)
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    take_write_lock_now(conn)
                self._store(conn, values, checkpoint.count)
        except WouldWait:
            log.info("audit anchor busy; the next checkpoint advances it", extra={"count": checkpoint.count})
            return False
        return True

    def reset(self, checkpoint: Anchored | None) -> None:
        """Move the anchor to ``checkpoint`` even if it is older (None: no anchor). Only for a restore
        of the data store from a backup, a deliberate rollback that the restore audits."""
        with self.engine.begin() as conn:
            conn.execute(audit_anchor.delete())
            if checkpoint is not None:
                conn.execute(audit_anchor.insert().values(id=1, **asdict(checkpoint)))

    @staticmethod
    def _store(conn: Connection, values: dict[str, Any], count: int) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(audit_anchor).values(id=1, **values).on_conflict_do_nothing())
        later = audit_anchor.c.count < count
        conn.execute(update(audit_anchor).where(audit_anchor.c.id == 1, later).values(**values))
