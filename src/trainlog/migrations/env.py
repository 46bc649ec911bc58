"""Alembic environment: trainlog passes its own connection in (see trainlog.db.migrate)."""

from alembic import context

from trainlog.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
