"""Schema migrations with Alembic, run against the app's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import text

from csss_fhir.models import db

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Any fixed number: the PostgreSQL advisory lock that lets one `csss db upgrade` run at a time.
_UPGRADE_LOCK = 0x0C555DB


def upgrade(app: Flask, revision: str = "head") -> None:
    """Create or migrate the database named by the app's settings.

    Two upgrades started at once (two containers booting) take turns: a PostgreSQL
    advisory lock, or a file lock beside a SQLite database. The second then finds the
    schema at its revision and does nothing, instead of failing half-way with a traceback.
    """
    with app.app_context(), _exclusive(db.engine.url), db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it (batch mode): with foreign keys enforced,
            # dropping the old copy of a referenced table (ai_prediction, say) fails once rows
            # point at it. Off for the upgrade (a no-op inside a transaction, so before it),
            # then every reference is checked before the upgrade commits.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                       {"key": _UPGRADE_LOCK})
                command.upgrade(_config(connection), revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the upgrade left {len(broken)} broken references "
                                           f"(first: {broken[0]}); nothing was committed")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


@contextmanager
def _exclusive(url: URL) -> Iterator[None]:
    """A lock file beside a SQLite database file, held for the block (other databases:
    nothing here; PostgreSQL is locked inside the transaction)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    import fcntl

    with open(f"{url.database}.upgrade-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def revision(app: Flask, message: str) -> None:
    """Autogenerate a migration from the models (development)."""
    with app.app_context(), db.engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
