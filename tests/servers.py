"""Real servers on loopback for the integration and browser suites: the app (werkzeug,
threaded), an SMTP server (aiosmtpd) and Redis (Debian's redis-server). One place starts
and stops them, so both suites serve the app the same way."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from werkzeug.serving import make_server

from csss_fhir.settings import Settings


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveServer:
    """The app served on loopback: `server("/login")` and `server.fhir("Patient")` are URLs."""

    app: object
    url: str

    def __call__(self, path: str) -> str:
        return f"{self.url}{path}"

    def fhir(self, path: str) -> str:
        return f"{self.url}/fhir/{path.lstrip('/')}"


@contextmanager
def serve_app(settings: Settings) -> Iterator[LiveServer]:
    """Build the app from `settings` and serve it on a free loopback port until the block ends;
    then stop the server and close the app's database connections."""
    from csss_fhir import create_app
    from csss_fhir.models import db

    served: dict = {}
    # Bind first: the app's BASE_URL (its links never follow the Host header) names the port.
    server = make_server("127.0.0.1", 0, lambda environ, start: served["app"](environ, start),
                         threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = served["app"] = create_app(dataclasses.replace(settings, base_url=url))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=url)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    messages: list[EmailMessage] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@contextmanager
def serve_smtp() -> Iterator[Inbox]:
    """An SMTP server on a free loopback port; its Inbox collects what it receives."""
    from aiosmtpd.controller import Controller

    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@contextmanager
def serve_redis(directory: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port, nothing saved to disk; its URL.

    Skips the test, with the reason, where redis-server is not installed (CI installs
    Debian's package in .ci/run).
    """
    import pytest
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
         "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url, socket_timeout=1).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
