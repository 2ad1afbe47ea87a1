"""The Alembic migrations build the same schema on PostgreSQL as on SQLite, and both match
the models (PostgreSQL pass of CI)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from tests.conftest import TEST_DATABASE_URL

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    TEST_DATABASE_URL is None,
    reason="needs PostgreSQL: set CSSS_TEST_DATABASE_URL (bash scripts/with-postgres.sh ...)")]


def schema(url: str) -> dict[str, dict]:
    """Tables with their columns (name, nullability, generic type), keys and indexes."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        tables = {}
        for table in found.get_table_names():
            if table == "alembic_version":
                continue
            tables[table] = {
                "columns": sorted(
                    (c["name"], c["nullable"], type(c["type"]).__name__.upper()
                     .replace("DOUBLE_PRECISION", "FLOAT").replace("BYTEA", "BLOB")
                     .replace("LARGEBINARY", "BLOB").replace("TIMESTAMP", "DATETIME"))
                    for c in found.get_columns(table)),
                "primary key": found.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted((tuple(k["constrained_columns"]), k["referred_table"])
                                       for k in found.get_foreign_keys(table)),
                "unique": sorted(tuple(u["column_names"])
                                 for u in found.get_unique_constraints(table)),
                # PostgreSQL also lists each unique constraint's own index.
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in found.get_indexes(table)
                                  if not i.get("duplicates_constraint")),
            }
        return tables
    finally:
        engine.dispose()


def test_migrations_build_the_same_schema_on_postgresql_as_on_sqlite(migrated_template,
                                                                      new_database):
    # Both templates were built by `csss_fhir.migrate.upgrade` from an empty database.
    postgres_url = new_database()
    on_sqlite, on_postgres = schema(f"sqlite:///{migrated_template}"), schema(postgres_url)
    assert on_postgres.keys() == on_sqlite.keys()
    for table in on_sqlite:
        assert on_postgres[table] == on_sqlite[table], table
