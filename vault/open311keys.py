"""Open311 API keys: one per registered application (a 311 app, a city website), issued by the operator.

A key is ``o311_<key id>_<secret>``: the key id (16 hex characters) finds the row, the secret
(256 bits) is stored only as HMAC-SHA256 under a key derived by the key provider, like client
secrets (vault/registry.py): a stolen database yields no usable key. Checking is constant-time,
with a decoy digest for an unknown or malformed key so that the answer's timing does not tell
which key ids exist. Issuing and revoking are audited in the same transaction as the change; the
key itself is printed once and never stored, logged or audited.

Public functions (class :class:`Open311Keys`): ``create(name, actor) -> IssuedKey``,
``revoke(key_id, actor)``, ``list() -> list[AppKey]``, ``check(api_key) -> AppKey | None``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, Engine, LargeBinary, String, Table, insert, select, update

from keys.aead import Mac, constant_time_equal
from keys.sqlstore import writing
from vault.audit.log import Actor, AuditLog, Event
from vault.errors import NotFound, ValidationFailed
from vault.models import metadata

if TYPE_CHECKING:
    from vault.runtime import Vault

# Label of the provider-derived key that hashes Open311 keys (not a field name: fields cannot hold "/").
OPEN311_KEY_LABEL = "open311-keys/v1"
PREFIX = "o311_"
ACTIVE, REVOKED = "active", "revoked"
_KEY = re.compile(r"o311_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,99}")
MAX_KEY_CHARS = 128  # longer input is not a key: refused before any hashing

open311_keys = Table(
    "open311_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class AppKey:
    """A registered application's key (never the key)."""

    key_id: str
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued key: ``api_key`` is shown once and exists nowhere else."""

    app: AppKey
    api_key: str


class Open311Keys:
    """Issue, list, revoke and check Open311 application keys."""

    def __init__(
        self, engine: Engine, secret_key: bytes, audit: AuditLog, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.audit = audit
        self._mac = Mac(secret_key)
        self._clock = clock or (lambda: datetime.now(UTC))
        # Equalises the time of a check for an unknown key id with that of a known one.
        self._decoy = self._mac.digest(b"decoy")

    def create(self, name: str, actor: Actor) -> IssuedKey:
        """A new key for application ``name``; audited as open311-keys.create."""
        if not _NAME.fullmatch(name):
            raise ValidationFailed(
                {"name": "1-100 letters, digits, spaces and . _ ( ) -, starting with a letter or digit"}
            )
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        api_key = f"{PREFIX}{key_id}_{secret}"
        now = self._clock()
        with writing(self.engine) as conn:
            conn.execute(
                insert(open311_keys).values(
                    key_id=key_id,
                    name=name,
                    key_hash=self._mac.digest(api_key.encode()),
                    status=ACTIVE,
                    created_at=now,
                    created_by=actor.subject,
                )
            )
            self.audit.append(
                conn, actor, [Event("open311-keys.create", reason=f"key {key_id} for application {name}")]
            )
        return IssuedKey(AppKey(key_id, name, ACTIVE, now), api_key)

    def revoke(self, key_id: str, actor: Actor) -> AppKey:
        """Revoke a key (its next use is refused); NotFound if no active key has this id."""
        with writing(self.engine) as conn:
            done = conn.execute(
                update(open311_keys)
                .where(open311_keys.c.key_id == key_id[:16], open311_keys.c.status == ACTIVE)
                .values(status=REVOKED, revoked_at=self._clock())
            ).rowcount
            if done != 1:
                raise NotFound("no active Open311 key with this id")
            self.audit.append(conn, actor, [Event("open311-keys.revoke", reason=f"key {key_id} revoked")])
            row = conn.execute(select(open311_keys).where(open311_keys.c.key_id == key_id)).one()
        return _app(row)

    def list(self) -> list[AppKey]:
        """Every key ever issued, oldest first (revoked ones too, for the record)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(open311_keys).order_by(open311_keys.c.created_at, open311_keys.c.key_id))
            return [_app(r) for r in rows]

    def check(self, api_key: str) -> AppKey | None:
        """The active application holding ``api_key``, else None (unknown, malformed or revoked: one answer)."""
        match = _KEY.fullmatch(api_key[:MAX_KEY_CHARS])
        key_id = match.group(1) if match else "-"
        with self.engine.connect() as conn:
            row = conn.execute(select(open311_keys).where(open311_keys.c.key_id == key_id)).one_or_none()
        presented = self._mac.digest(api_key[:MAX_KEY_CHARS].encode("utf-8", "replace"))
        stored = bytes(row.key_hash) if row is not None else self._decoy
        # constant-time compare: a timing difference would reveal how much of a guessed key is right
        if not constant_time_equal(presented, stored) or row is None or row.status != ACTIVE:
            return None
        return _app(row)


def for_vault(vault: Vault) -> Open311Keys:
    """The key service of an opened vault (its HMAC key derived by the vault's key provider)."""
    return Open311Keys(vault.data_engine, vault.provider.index_key(OPEN311_KEY_LABEL), vault.audit)


def _app(r: Any) -> AppKey:
    return AppKey(r.key_id, r.name, r.status, r.created_at)
