"""Alembic environment: the connection and version table are handed in by the caller
(`citizen-vault db upgrade`); run as `alembic -n keys upgrade head` (alembic.ini), it
connects to the store the CITIZEN_VAULT_* settings name (docs/operations.md, "Upgrade")."""

import os
from pathlib import Path

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line: no caller, so open the configured store
    from keys.sqlstore import make_engine

    # As vault.settings.Settings.resolved_keystore_url (the keys package cannot import the vault's settings).
    data_dir = Path(os.environ.get("CITIZEN_VAULT_DATA_DIR", "data")).resolve()
    engine = make_engine(os.environ.get("CITIZEN_VAULT_KEYSTORE_URL") or f"sqlite:///{data_dir / 'keystore.db'}")
    with engine.begin() as conn:
        context.configure(connection=conn, version_table="cv_keystore_version", render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
else:
    context.configure(
        connection=connection,
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
