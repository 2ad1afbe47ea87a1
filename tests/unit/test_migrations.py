"""Alembic's migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from csss_fhir.models import db


def test_migrated_database_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "write a migration for: " + repr(differences)


def test_migrations_form_one_line_of_history():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from csss_fhir.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1, \
        "several heads: point the new migration's down_revision at the current head"
