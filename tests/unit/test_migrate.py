"""`csss db upgrade` twice at once on a fresh database: they take turns, neither fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.factories import TEST_JWT_SECRET, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def test_two_upgrades_at_once_on_a_fresh_sqlite_database(tmp_path):
    database = tmp_path / "fresh.db"
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{database}",
               "CSSS_INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": TEST_SECRET,
               "JWT_SECRET_KEY": TEST_JWT_SECRET, "CSSS_ENV": "testing",
               "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-c", "from csss_fhir.cli import cli; cli()", "db", "upgrade"]
    runs = [subprocess.Popen(command, env=environ, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "Traceback" not in output, output
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert len(versions) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks are POSIX")
def test_the_lock_file_sits_beside_the_database(app, tmp_path):
    from csss_fhir import migrate
    from csss_fhir.models import db

    migrate.upgrade(app)
    with app.app_context():
        assert Path(f"{db.engine.url.database}.upgrade-lock").exists()
