"""Shared fixtures: settings, app, client, runner, session, and role helpers."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from csss_fhir.settings import Settings
from tests import factories


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated with Alembic, copied for each test (fast, and it proves
    the migrations build the schema the models expect)."""
    from csss_fhir import create_app, migrate

    root = tmp_path_factory.mktemp("template")
    path = root / "template.db"
    app = create_app(factories.settings_for(root / "instance", f"sqlite:///{path}"))
    migrate.upgrade(app)
    with app.app_context():
        from csss_fhir.models import db

        db.engine.dispose()
    return path


# A PostgreSQL server URL (a role that may CREATE DATABASE), e.g. from
# `scripts/with-postgres.sh`: then every test gets a fresh PostgreSQL database instead of a
# SQLite copy. Read only here; the service reads DATABASE_URL through settings.py.
TEST_DATABASE_URL = os.environ.get("CSSS_TEST_DATABASE_URL", "").strip() or None


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Under CSSS_TEST_DATABASE_URL: the name of one database migrated with Alembic, which
    `CREATE DATABASE ... TEMPLATE` clones for each test; None otherwise."""
    if TEST_DATABASE_URL is None:
        yield None
        return
    from csss_fhir import create_app, migrate

    name = f"csss_template_{secrets.token_hex(4)}"
    _postgres_admin(f'CREATE DATABASE "{name}"')
    root = tmp_path_factory.mktemp("pg-template")
    app = create_app(factories.settings_for(root / "instance", postgres_url(name)))
    migrate.upgrade(app)
    with app.app_context():
        from csss_fhir.models import db

        db.engine.dispose()
    yield name
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url(name: str) -> str:
    """The URL of database `name` on the CSSS_TEST_DATABASE_URL server."""
    from sqlalchemy.engine import make_url

    url = make_url(TEST_DATABASE_URL).set(database=name)
    return url.render_as_string(hide_password=False)


def _postgres_admin(statement: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def new_database(tmp_path: Path, migrated_template: Path,
                 postgres_template: str | None) -> Iterator[Callable[[], str]]:
    """`new_database()` -> the URL of a fresh, migrated, empty database for this test:
    a SQLite copy of the template, or a PostgreSQL clone under CSSS_TEST_DATABASE_URL."""
    created: list[str] = []

    def make() -> str:
        if postgres_template is None:
            path = tmp_path / f"test-{len(created)}.db"
            shutil.copy(migrated_template, path)
            created.append(str(path))
            return f"sqlite:///{path}"
        name = f"csss_test_{secrets.token_hex(6)}"
        _postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
        created.append(name)
        return postgres_url(name)

    yield make
    if postgres_template is not None:
        for name in created:
            _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, new_database: Callable[[], str]) -> Settings:
    return factories.settings_for(tmp_path / "instance", new_database())


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
def new_user(app) -> Callable[..., factories.UserLogin]:
    """`new_user("doctor", name=...)` -> a UserLogin for a fresh user of `app`."""
    def make(role: str, **kwargs) -> factories.UserLogin:
        return factories.make_login(app, role, **kwargs)

    return make


@pytest.fixture
def as_role(client, new_user):
    """`as_role("doctor")` -> request headers with a bearer token for a fresh user
    (an admin signs in with the e-mailed one-time code too)."""
    def make(role: str, **kwargs) -> dict[str, str]:
        return factories.login(client, new_user(role, **kwargs))

    return make
