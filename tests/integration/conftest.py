"""Real servers on loopback: the app (werkzeug, threaded) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from tests import factories


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@dataclass
class LiveServer:
    app: object
    url: str

    def fhir(self, path: str) -> str:
        return f"{self.url}/fhir/{path.lstrip('/')}"


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def live_settings(tmp_path, new_database, smtp_server):
    return factories.settings_for(
        tmp_path / "instance", new_database(), mail_backend="smtp",
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none",
        mail_from="CSSS Test <reports@test.local>", smtp_timeout_seconds=5.0,
        confidence_threshold=0.0)


@pytest.fixture
def live_server(live_settings):
    from csss_fhir import create_app

    app = create_app(live_settings)
    server = serve(app)
    yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    with app.app_context():
        from csss_fhir.models import db

        db.engine.dispose()
