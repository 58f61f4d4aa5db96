"""The audit events of a grant page: one per citizen, written in the read's own transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from vault.audit.log import Actor, AuditLog, Event
from vault.catalogue import Value

# Up to this many citizens the events go through AuditLog.append as they are; a larger page is
# written in batches of citizens who read the same fields (AuditLog.append_per_citizen: the columns
# they share are encoded and bound once). The events are the same either way.
BATCHED_FROM = 51


def audit_page(
    audit: AuditLog,
    conn: Connection,
    actor: Actor,
    read: Callable[..., Event],
    records: Sequence[tuple[str, dict[str, Value] | None]],
) -> None:
    """One ``read(...)`` event per citizen: allowed with the fields returned, or failed (unavailable)
    for a citizen whose data could not be opened."""
    if len(records) < BATCHED_FROM:
        audit.append(
            conn,
            actor,
            [
                read(citizen_id=c, fields=sorted(v))
                if v is not None
                else read(citizen_id=c, outcome="failed", reason="unavailable")
                for c, v in records
            ],
        )
        return
    by_fields: dict[tuple[str, ...], list[str]] = {}
    failed: list[str] = []
    for c, v in records:
        if v is None:
            failed.append(c)
        else:
            by_fields.setdefault(tuple(sorted(v)), []).append(c)
    for fields, readers in by_fields.items():
        audit.append_per_citizen(conn, actor, read(fields=list(fields)), readers)
    if failed:
        audit.append_per_citizen(conn, actor, read(outcome="failed", reason="unavailable"), failed)
