"""Alembic environment of the key store: the caller's connection (`citizen-vault db upgrade`), or run
as `alembic -n keys upgrade head` (alembic.ini) on the store the CITIZEN_VAULT_* settings name."""

from alembic import context

from keys.migrate import KEYSTORE_VERSION_TABLE, default_keystore_url, run_environment

run_environment(context, default_keystore_url, KEYSTORE_VERSION_TABLE)
