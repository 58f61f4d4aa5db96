"""Alembic upgrades run programmatically, for the key store and (through vault.db) the data store."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

KEYSTORE_SCRIPTS = "keys:migrations"
KEYSTORE_VERSION_TABLE = "cv_keystore_version"


def _config(script_location: str, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["version_table"] = version_table
    return cfg


def upgrade(engine: Engine, script_location: str, version_table: str, target: str = "head") -> None:
    """Bring the schema behind ``engine`` to the newest revision (or ``target``)."""
    cfg = _config(script_location, version_table)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def downgrade(engine: Engine, script_location: str, version_table: str, target: str) -> None:
    """Take the schema behind ``engine`` back to revision ``target`` (tests of the migrations)."""
    cfg = _config(script_location, version_table)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


def is_current(engine: Engine, script_location: str, version_table: str) -> bool:
    """True when the schema is at the newest revision (used to refuse running on a stale schema)."""
    head = ScriptDirectory.from_config(_config(script_location, version_table)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()
    return current == head


def upgrade_keystore(engine: Engine) -> None:
    """Create or upgrade the key store's tables."""
    upgrade(engine, KEYSTORE_SCRIPTS, KEYSTORE_VERSION_TABLE)


def keystore_is_current(engine: Engine) -> bool:
    """True when the key store schema is at head."""
    return is_current(engine, KEYSTORE_SCRIPTS, KEYSTORE_VERSION_TABLE)
