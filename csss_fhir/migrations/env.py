"""Alembic environment: runs with the connection `csss_fhir.migrate` hands it."""

from __future__ import annotations

from alembic import context

from csss_fhir.models import db

config = context.config
target_metadata = db.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `csss db upgrade`")
run_migrations_online()
