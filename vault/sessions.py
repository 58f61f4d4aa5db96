"""Server-side web sessions: the browser holds a random id, the store only its SHA-256.

A session ends on sign-out, after ``idle`` without a request, or ``absolute`` after it began,
whichever comes first; an ended session is never valid again (its row stays, with ``ended_at``).
Nothing here knows of HTTP: api/security/sessions.py sets the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Engine, Index, String, Table, select, update

from keys.sqlstore import writing
from vault.audit.log import iso
from vault.models import metadata

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie's id, hex; the id itself is never stored
    Column("subject", String(256), nullable=False),
    Column("role", String(32), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("issuer", String(256), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
    Column("ended_at", String(32), nullable=True),
    # Whom the session acts for (a citizen id), or None: a choice only, re-checked against the
    # relation on every request (api/security/acting.py), never trusted as stored (v0016).
    Column("acting_for", String(36), nullable=True),
    Index("ix_web_sessions_subject", "subject"),
)

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most once a minute per session
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WebSession:
    """A live session: who, since when, and the token its forms must carry."""

    id_hash: str
    subject: str
    role: str
    agency: str
    issuer: str
    csrf_token: str
    created_at: str
    last_seen_at: str
    acting_for: str | None = None


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe text): session ids, CSRF tokens."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; False when either is missing."""
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    """Create, look up, touch and end sessions (idle and absolute timeouts; ``clock`` for tests)."""

    def __init__(self, engine: Engine, idle: timedelta, absolute: timedelta, clock: Clock = _now) -> None:
        self.engine = engine
        self.idle = idle
        self.absolute = absolute
        self.clock = clock

    def create(self, subject: str, role: str, agency: str, issuer: str) -> tuple[str, WebSession]:
        """A new session: (the id for the cookie, the session)."""
        session_id, now = new_token(), iso(self.clock())
        row = WebSession(_hash(session_id), subject, role, agency, issuer, new_token(), now, now)
        with writing(self.engine) as conn:
            conn.execute(web_sessions.insert().values(**vars(row), ended_at=None))
        return session_id, row

    def get(self, session_id: str) -> WebSession | None:
        """The live session with this id, or None (unknown, ended, idle too long or too old);
        a session found past a timeout is ended. Its last request time is updated."""
        if not session_id or len(session_id) > 128:
            return None
        id_hash, now = _hash(session_id), self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(select(web_sessions).where(web_sessions.c.id_hash == id_hash)).first()
        if row is None or row.ended_at is not None:
            return None
        seen, created = _parse(row.last_seen_at), _parse(row.created_at)
        if now - seen >= self.idle or now - created >= self.absolute:
            self._end(id_hash, now)
            return None
        session = WebSession(
            row.id_hash,
            row.subject,
            row.role,
            row.agency,
            row.issuer,
            row.csrf_token,
            row.created_at,
            row.last_seen_at,
            row.acting_for,
        )
        if now - seen >= TOUCH_EVERY:
            self.touch(id_hash)
        return session

    def touch(self, id_hash: str) -> None:
        """Record a request now (the idle timeout counts from here)."""
        with writing(self.engine) as conn:
            conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == id_hash, web_sessions.c.ended_at.is_(None))
                .values(last_seen_at=iso(self.clock()))
            )

    def act_for(self, id_hash: str, citizen: str | None) -> None:
        """Remember whom the live session acts for (None: as themselves). Only a choice: every
        request re-checks the relation before acting on it."""
        with writing(self.engine) as conn:
            conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == id_hash, web_sessions.c.ended_at.is_(None))
                .values(acting_for=citizen)
            )

    def end(self, session_id: str) -> WebSession | None:
        """End the session with this id (sign-out, rotation); the session it was, if live."""
        found = self.get(session_id)
        if found is not None:
            self._end(found.id_hash, self.clock())
        return found

    def end_all_for(self, subject: str) -> int:
        """End every live session of ``subject`` (a role removed, an account closed); how many."""
        with writing(self.engine) as conn:
            ended = conn.execute(
                update(web_sessions)
                .where(web_sessions.c.subject == subject, web_sessions.c.ended_at.is_(None))
                .values(ended_at=iso(self.clock()))
            )
        return int(ended.rowcount or 0)

    def _end(self, id_hash: str, now: datetime) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == id_hash, web_sessions.c.ended_at.is_(None))
                .values(ended_at=iso(now))
            )


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
