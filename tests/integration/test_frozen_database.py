"""A frozen PostgreSQL (every server process stopped with SIGSTOP, as in the fault campaign
of issue 15 #8): /readyz answers 503 within two seconds and recovers once it thaws."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    TEST_DATABASE_URL is None,
    reason="needs PostgreSQL: set CSSS_TEST_DATABASE_URL (bash scripts/with-postgres.sh ...)")]


def server_processes(app) -> list[int]:
    """This test server's postmaster (from its data directory's postmaster.pid) and children:
    never another PostgreSQL on the machine."""
    from sqlalchemy import text

    from csss_fhir.models import db

    with app.app_context(), db.engine.connect() as connection:
        data = connection.execute(text("SELECT current_setting('data_directory')")).scalar()
    postmaster = int((Path(data) / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                              text=True).stdout.split()
    return [postmaster, *map(int, children)]


def test_readyz_answers_503_within_two_seconds_while_postgresql_is_frozen(app, client):
    assert client.get("/readyz").status_code == 200
    processes = server_processes(app)
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 2.0
            assert response.status_code == 503
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "/readyz did not recover after the thaw"
        time.sleep(0.5)
