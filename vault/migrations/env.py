"""Alembic environment of the data store: the caller's connection (`citizen-vault db upgrade`), or run
as `alembic -n data upgrade head` (alembic.ini) on the store the CITIZEN_VAULT_* settings name."""

from alembic import context

from keys.migrate import run_environment
from vault.db import DATA_VERSION_TABLE
from vault.settings import Settings

run_environment(context, lambda: Settings().resolved_database_url(), DATA_VERSION_TABLE)
