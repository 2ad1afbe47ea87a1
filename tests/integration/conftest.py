"""Fixtures for the integration suite: the app and an SMTP server on loopback (tests/servers.py)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.servers import serve_app, serve_smtp


@pytest.fixture
def smtp_server():
    with serve_smtp() as inbox:
        yield inbox


@pytest.fixture
def live_settings(tmp_path, new_database, smtp_server):
    return factories.settings_for(
        tmp_path / "instance", new_database(), mail_backend="smtp",
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none",
        mail_from="CSSS Test <reports@test.local>", smtp_timeout_seconds=5.0,
        confidence_threshold=0.0)


@pytest.fixture
def live_server(live_settings):
    with serve_app(live_settings) as server:
        yield server
