"""Alembic environment: runs on the connection Baton hands over (see ``Database.migrate``)."""

from alembic import context

from baton.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
