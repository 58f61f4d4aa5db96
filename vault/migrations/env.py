"""Alembic environment: the connection and version table are handed in by the caller
(`citizen-vault db upgrade`); run as `alembic -n data upgrade head` (alembic.ini), it
connects to the store the CITIZEN_VAULT_* settings name (docs/operations.md, "Upgrade")."""

from alembic import context

from vault.settings import Settings

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line: no caller, so open the configured store
    from keys.sqlstore import make_engine

    engine = make_engine(Settings().resolved_database_url())
    with engine.begin() as conn:
        context.configure(connection=conn, version_table="cv_data_version", render_as_batch=True)
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
