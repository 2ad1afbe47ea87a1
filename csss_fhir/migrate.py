"""Schema migrations with Alembic, run against the app's database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from flask import Flask

from csss_fhir.models import db

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    """Create or migrate the database named by the app's settings."""
    with app.app_context(), db.engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def revision(app: Flask, message: str) -> None:
    """Autogenerate a migration from the models (development)."""
    with app.app_context(), db.engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
