"""Shared fixtures: settings, app, client, runner, session, and role helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from csss_fhir.settings import Settings
from tests import factories


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated with Alembic, copied for each test (fast, and it proves
    the migrations build the schema the models expect)."""
    from csss_fhir import create_app, database

    root = tmp_path_factory.mktemp("template")
    path = root / "template.db"
    app = create_app(factories.settings_for(root / "instance", f"sqlite:///{path}"))
    database.upgrade(app)
    with app.app_context():
        from csss_fhir.models import db

        db.engine.dispose()
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_template: Path) -> Settings:
    database = tmp_path / "test.db"
    shutil.copy(migrated_template, database)
    return factories.settings_for(tmp_path / "instance", f"sqlite:///{database}")


@pytest.fixture
def app(settings: Settings):
    from csss_fhir import create_app

    app = create_app(settings)
    yield app
    with app.app_context():
        from csss_fhir.models import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    from csss_fhir.models import db

    with app.app_context():
        yield db.session


@pytest.fixture
def as_role(app, client):
    """`as_role("doctor")` -> request headers with a bearer token for a fresh user."""
    def make(role: str, **kwargs) -> dict[str, str]:
        with app.app_context():
            user, password = factories.make_user(role, **kwargs)
            email = user.email
        return factories.auth_headers(client, app, email, password, role)

    return make
