"""Notification latency of FHIR Subscriptions: from a report's release to its receipt.

    python benchmarks/subscription_latency.py [--releases 20]

An EHR subscribes (rest-hook, id-only) to the "report released" topic with a receiver on
loopback (http.server in a thread); the jobs run on the app's job thread, as in the quick
start. Each scan is approved through the workflow, and the latency is the time from the
event's recording (in the approval's transaction, just before its commit) to the moment
the receiver has read the notification. Prints p50, p99 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from csss_fhir import create_app, migrate, workflow
from csss_fhir.cli import cli
from csss_fhir.extensions import services
from csss_fhir.jobs.runners import ThreadRunner
from csss_fhir.models import SubscriptionEvent, db
from tests import factories
from tests.unit.subscriptions.conftest import subscription


def start_receiver(received: dict[int, datetime], arrived: threading.Condition) -> str:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            at = datetime.now(UTC)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            for parameter in body["entry"][0]["resource"]["parameter"]:
                if parameter["name"] == "notification-event":
                    number = int(parameter["part"][0]["valueString"])
                    with arrived:
                        received[number] = at
                        arrived.notify_all()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def subscribe(app, endpoint: str) -> None:
    result = app.test_cli_runner().invoke(cli, args=[
        "clients", "create", "bench-ehr",
        "--scopes", "system/Subscription.write system/DiagnosticReport.read"])
    ids = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    client = app.test_client()
    token = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": ids["client_id"],
        "client_secret": ids["client_secret"]}).get_json()["access_token"]
    response = client.post("/fhir/Subscription", json=subscription(endpoint),
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_data(as_text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    app = create_app(factories.settings_for(root / "instance", f"sqlite:///{root}/bench.db"))
    migrate.upgrade(app)
    received: dict[int, datetime] = {}
    arrived = threading.Condition()
    subscribe(app, start_receiver(received, arrived))  # inline runner: the handshake
    with app.app_context():
        scans = [factories.make_scan("PHARMACIST_COMPLETED")[0] for _ in range(args.releases)]
        admin = factories.actor_for(factories.make_user("admin")[0])
    app.extensions["csss_jobs"] = ThreadRunner(app, sweep_seconds=30.0)  # the quick start's
    with app.app_context():
        for scan_id in scans:
            workflow.approve(db.session, services(), admin, scan_id)
        with arrived:
            if not arrived.wait_for(lambda: len(received) == len(scans), timeout=60):
                sys.exit(f"only {len(received)} of {len(scans)} notifications arrived")
        recorded = {e.number: e.created_at for e in db.session.scalars(select(SubscriptionEvent))}
    latencies = sorted((received[n] - recorded[n]).total_seconds() * 1000 for n in received)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"{len(latencies)} releases: latency release -> receipt p50 "
          f"{statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
          f" (thread runner, SQLite, loopback)")


if __name__ == "__main__":
    main()
