"""The data store: engine and migrations."""

from __future__ import annotations

from sqlalchemy import Engine

from keys import migrate
from keys.sqlstore import make_engine

DATA_SCRIPTS = "vault:migrations"
DATA_VERSION_TABLE = "cv_data_version"


# WAL pages before a committing writer checkpoints by itself (SQLite's default: 1,000). The server
# checkpoints in the background (vault.runtime.Vault.background_checkpoints), so this is a backstop
# that bounds the WAL (about 32 MiB) in processes without one.
AUTOCHECKPOINT_PAGES = 8000


def data_engine(url: str) -> Engine:
    """Engine for the data store."""
    return make_engine(url, autocheckpoint=AUTOCHECKPOINT_PAGES)


def upgrade(engine: Engine) -> None:
    """Create or upgrade the data store's tables."""
    migrate.upgrade(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)


def is_current(engine: Engine) -> bool:
    """True when the data store schema is at head."""
    return migrate.is_current(engine, DATA_SCRIPTS, DATA_VERSION_TABLE)
