"""Row-level work shared by the citizen's and the officers' sides: sealing text under the citizen's
data key, history and message rows, guarded status changes. Callers pass their transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from keys.dekstore import DekRef, DekStore
from keys.errors import KeyLayerError
from vault.audit.log import Actor
from vault.errors import CitizenErased, Conflict, NotFound
from vault.fieldcipher import SLOT_PROFILE, FieldCipher
from vault.models import citizens
from vault.requests.model import HistoryEntry, Message
from vault.requests.tables import rights_request_history as hist
from vault.requests.tables import rights_request_messages as msgs
from vault.requests.tables import rights_requests as rr


class RequestConflict(Conflict):
    """409 with a reason code: a duplicate open request, or a step the request's status does not allow."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__("request", why)
        self.reason = reason


def cipher(conn: Connection, dekstore: DekStore, citizen: uuid.UUID) -> FieldCipher:
    """A cipher under the citizen's current profile DEK; CitizenErased or NotFound otherwise."""
    row = conn.execute(select(citizens.c.status, citizens.c.dek_version).where(citizens.c.id == citizen)).first()
    if row is None:
        raise NotFound("no such citizen")
    if row.status != "active":
        raise CitizenErased("the citizen was erased")
    version = int(row.dek_version)
    return FieldCipher(citizen, dekstore.get(DekRef(citizen, SLOT_PROFILE, version)), SLOT_PROFILE, version)


def open_text(dekstore: DekStore, citizen: str, version: int, name: str, blob: bytes) -> str | None:
    """Decrypt a sealed text; None when its key was shredded (erasure) or retired (DEK rotation)."""
    cid = uuid.UUID(citizen)
    try:
        dek = dekstore.get(DekRef(cid, SLOT_PROFILE, version))
        return FieldCipher(cid, dek, SLOT_PROFILE, version).decrypt(name, bytes(blob)).decode("utf-8")
    except KeyLayerError:
        return None


def message_name(request_id: str, seq: int) -> str:
    """The associated-data name of a message: binds it to its request and place."""
    return f"rq/{request_id}/msg/{seq}"


def proposed_name(request_id: str) -> str:
    """The associated-data name of a rectification's proposed values."""
    return f"rq/{request_id}/proposed"


def add_history(conn: Connection, request_id: str, status: str, event: str, at: str, actor: Actor) -> None:
    """Append one history row."""
    seq = conn.scalar(select(func.coalesce(func.max(hist.c.seq), 0)).where(hist.c.request_id == request_id))
    conn.execute(
        insert(hist).values(
            request_id=request_id,
            seq=int(seq or 0) + 1,
            status=status,
            event=event,
            at=at,
            actor=actor.subject[:256],
            actor_role=actor.role[:32],
        )
    )


def add_message(conn: Connection, sealer: FieldCipher, request_id: str, text: str, at: str, role: str) -> None:
    """Seal and append one message."""
    seq = int(conn.scalar(select(func.coalesce(func.max(msgs.c.seq), 0)).where(msgs.c.request_id == request_id)) or 0)
    body = sealer.encrypt(message_name(request_id, seq + 1), text.encode("utf-8"))
    conn.execute(
        insert(msgs).values(
            request_id=request_id, seq=seq + 1, at=at, author_role=role, body=body, dek_version=sealer.dek_version
        )
    )


def move(conn: Connection, row: Any, to: str, at: str, allowed: Sequence[str], **values: Any) -> None:
    """Change a request's status from one of ``allowed``, guarded against a concurrent change."""
    if row.status not in allowed:
        raise RequestConflict("invalid-transition", f"a {row.status} request cannot become {to}")
    done = conn.execute(
        update(rr).where(rr.c.id == row.id, rr.c.status == row.status).values(status=to, updated_at=at, **values)
    )
    if done.rowcount != 1:
        raise RequestConflict("changed-concurrently", "the request changed meanwhile: reload it")


def history(conn: Connection, request_id: str) -> list[HistoryEntry]:
    """A request's history, oldest first."""
    rows = conn.execute(select(hist).where(hist.c.request_id == request_id).order_by(hist.c.seq))
    return [HistoryEntry(r.status, r.event, r.at, r.actor, r.actor_role) for r in rows]


def messages(conn: Connection, dekstore: DekStore, request_id: str, citizen: str) -> list[Message]:
    """A request's messages, decrypted, oldest first."""
    rows = conn.execute(select(msgs).where(msgs.c.request_id == request_id).order_by(msgs.c.seq))
    return [
        Message(
            r.at,
            r.author_role,
            open_text(dekstore, citizen, int(r.dek_version), message_name(request_id, r.seq), r.body),
        )
        for r in rows
    ]


def detail_with(row: Any, **more: Any) -> str:
    """The row's detail JSON with ``more`` merged in."""
    return json.dumps({**json.loads(row.detail), **more}, sort_keys=True)
