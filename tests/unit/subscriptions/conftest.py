"""A real rest-hook receiver on loopback and system-client logins for the subscription tests."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from csss_fhir.cli import cli

BASE = "http://127.0.0.1:5000/fhir"  # the tests' BASE_URL (settings.public_root)
REPORT_RELEASED = f"{BASE}/SubscriptionTopic/report-released"
SCAN_NEEDS_REVIEW = f"{BASE}/SubscriptionTopic/scan-needs-review"


class Receiver:
    """Answers each POST with `status` (change it to take the endpoint down or up; with
    `location`, a redirect there) and keeps every request: (status answered, parsed body,
    headers)."""

    def __init__(self) -> None:
        self.status = 200
        self.location: str | None = None
        self.requests: list[tuple[int, dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.status
                receiver.requests.append((status, body, dict(self.headers)))
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self, kind: str = "event-notification") -> list[dict]:
        """The bodies of the given notification type the receiver acknowledged (2xx)."""
        return [body for status, body, _ in self.requests
                if 200 <= status < 300 and notification_type(body) == kind]


def notification_type(bundle: dict) -> str:
    status = bundle["entry"][0]["resource"]
    return next(p["valueCode"] for p in status["parameter"] if p["name"] == "type")


def event_numbers(bundle: dict) -> list[int]:
    status = bundle["entry"][0]["resource"]
    return [int(part["valueString"]) for p in status["parameter"]
            if p["name"] == "notification-event"
            for part in p["part"] if part["name"] == "event-number"]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """`dns["name.example.test"] = ["10.0.0.7"]`: what names under .test resolve to (RFC
    2606 reserves the TLD, so no real resolver answers for it); other names resolve as
    usual."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6,
                     "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def system_client(client, runner):
    """`system_client("system/Subscription.write ...")` -> Bearer headers for a new client."""
    def make(scopes: str) -> dict[str, str]:
        result = runner.invoke(cli, args=["clients", "create", f"ehr-{uuid.uuid4().hex[:8]}",
                                          "--scopes", scopes])
        assert result.exit_code == 0, result.output
        ids = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
        token = client.post("/auth/token", data={
            "grant_type": "client_credentials", "client_id": ids["client_id"],
            "client_secret": ids["client_secret"]}).get_json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make


def subscription(endpoint: str, topic: str = REPORT_RELEASED, *, content: str = "id-only",
                 heartbeat: int | None = None, filters: tuple[str, ...] = (),
                 headers: tuple[str, ...] = ()) -> dict:
    """A Backport IG Subscription resource as an EHR would send it."""
    backport = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
    channel: dict = {
        "type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": f"{backport}/backport-payload-content",
                                    "valueCode": content}]},
    }
    if heartbeat:
        channel["extension"] = [{"url": f"{backport}/backport-heartbeat-period",
                                 "valueUnsignedInt": heartbeat}]
    if headers:
        channel["header"] = list(headers)
    body = {"resourceType": "Subscription", "status": "requested",
            "reason": "tell the EHR", "criteria": topic, "channel": channel}
    if filters:
        body["_criteria"] = {"extension": [{"url": f"{backport}/backport-filter-criteria",
                                            "valueString": f} for f in filters]}
    return body
