"""Alembic upgrades run programmatically, for the key store and (through vault.db) the data store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def run_environment(context: Any, default_url: Callable[[], str], version_table: str) -> None:
    """The body of both stores' Alembic env.py: the caller's connection (`db upgrade`) or, when
    Alembic is run directly (alembic.ini), an engine on the store the settings name."""
    from keys.sqlstore import make_engine  # noqa: PLC0415 - only the Alembic command line needs it

    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, version_table=config.attributes["version_table"], render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(default_url())
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, version_table=version_table, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def default_keystore_url() -> str:
    """As vault.settings.Settings.resolved_keystore_url, from the environment (keys cannot import vault)."""
    data_dir = Path(os.environ.get("CITIZEN_VAULT_DATA_DIR", "data")).resolve()
    return os.environ.get("CITIZEN_VAULT_KEYSTORE_URL") or f"sqlite:///{data_dir / 'keystore.db'}"
