"""Scale-out proof on one machine (issue 14 item 5): two app nodes, two job workers, one of
each killed with SIGKILL mid-run and restarted, and still every scan classified once and
every report e-mailed once.

Real processes, nothing mocked: PostgreSQL (scripts/with-postgres.sh) holds the rows and the
blobs (STORAGE_BACKEND=postgresql), Redis (scripts/with-redis.sh) is the Celery broker and the
rate-limit store, two gunicorn instances each with their own instance folder and STORAGE_DIR
(no node-local state may matter), two `csss worker` processes (one with the sweep), and an
aiosmtpd sink on loopback. CLIENTS threads run CHAINS full chains over HTTP (upload -> the AI
by itself -> verify -> pharmacy review -> approve -> the e-mail), each client on its own node
and on the other one when a connection fails. 30 clients and 60 chains, as the issue asks:
about a minute on the 2-core CI machine (CSSS_SCALE_CLIENTS and CSSS_SCALE_CHAINS resize it).
Runs in .ci/run's Redis pass (not in the default run: it needs both servers).

A scan the killed worker was classifying is run again once its claim lapses
(AI_DEADLINE_SECONDS, 15 s here); an e-mail it was sending is held for mail/outbox.py's
CLAIM_SECONDS (300 s) before the sweep sends it, so the drain waits up to DRAIN_SECONDS. An
e-mail whose SMTP DATA had begun when its sender died is `uncertain` by design (README,
"Background jobs"): accepted only if the sink holds exactly one copy.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from csss_fhir.jobs.tasks import AI_BATCH
from tests import factories
from tests.conftest import TEST_DATABASE_URL
from tests.integration.test_postgres_concurrency import gunicorn_environment
from tests.servers import free_port

REDIS_URL = os.environ.get("CSSS_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(TEST_DATABASE_URL is None or not REDIS_URL,
                       reason="needs PostgreSQL and Redis: bash scripts/with-postgres.sh bash "
                              "scripts/with-redis.sh <pytest command>"),
]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = int(os.environ.get("CSSS_SCALE_CLIENTS", "30"))
CHAINS = int(os.environ.get("CSSS_SCALE_CHAINS", "60"))
KILL_AFTER_UPLOADS = CHAINS // 3
WORKER_CONCURRENCY = 2
DRAIN_SECONDS = 420  # > the 300 s claim of a job held by the killed worker, plus sweeps
STEP_SECONDS = 120  # one chain step, the AI's wait included


class Node:
    """A process of the cluster in its own session, so SIGKILL reaches all its children."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log = cwd / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: no graceful shutdown, no goodbye to the broker."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-3000:]


class AppNode(Node):
    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = None  # factories.login reads the URL only (its codes come from the sink)
        argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker" / "gunicorn.conf.py"),
                "--pythonpath", str(ROOT), "--bind", f"127.0.0.1:{self.port}",
                "--workers", "2", "--threads", "4", "wsgi:app"]
        super().__init__(name, argv, {**env, "BASE_URL": self.url}, cwd)

    def wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or loading the model
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} never became ready:\n{self.tail()}")


def node_environment(settings, smtp_port: int, instance: Path) -> dict[str, str]:
    """What a node of the cluster is told, through the environment only."""
    env = gunicorn_environment(settings)
    env.update({
        "PYTHONPATH": str(ROOT), "CSSS_INSTANCE_PATH": str(instance / "instance"),
        "STORAGE_DIR": str(instance / "storage"), "STORAGE_BACKEND": "postgresql",
        "JOBS_MODE": "celery", "CELERY_BROKER_URL": REDIS_URL, "JOBS_SWEEP_SECONDS": "2",
        "AI_DEADLINE_SECONDS": "15", "RATELIMIT_STORAGE_URI": REDIS_URL,
        "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
        "SMTP_SECURITY": "none", "SMTP_TIMEOUT": "5",
        "GUNICORN_ACCESSLOG": str(instance / "access.log"),
    })
    return env


class Clients:
    """What the clients saw: every status by node, connection failures, 5xx answers."""

    def __init__(self, nodes: list[AppNode]) -> None:
        self.nodes = nodes
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.server_errors: list[str] = []
        self.connection_errors: Counter = Counter()
        self.uploads = 0
        self.errors: list[BaseException] = []

    def call(self, home: int, method: str, path: str, *, retry: bool = True,
             **kwargs) -> tuple[requests.Response | None, bool]:
        """The request on the client's own node, on the other one when the connection fails;
        returns the response and whether a connection failed on the way (a retried POST
        may then meet its own first attempt's result). With retry=False a failed connection
        returns (None, True): the caller finds out first whether the request took effect."""
        retried = False
        deadline = time.monotonic() + 120
        for attempt in range(1000):
            node = self.nodes[(home + attempt) % len(self.nodes)]
            try:
                response = requests.request(method, f"{node.url}{path}", timeout=120, **kwargs)
            # A refused connection, or a response cut off mid-body: the killed node's own
            # in-flight request (the one kind of failure the proof allows).
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                with self.lock:
                    self.connection_errors[node.name] += 1
                retried = True
                if not retry:
                    return None, True
                assert time.monotonic() < deadline, f"no node answered {method} {path}"
                time.sleep(0.2)
                continue
            with self.lock:
                self.statuses[(node.name, response.status_code)] += 1
                if response.status_code >= 500:
                    self.server_errors.append(
                        f"{node.name} {method} {path} -> {response.status_code} "
                        f"{response.text[:300]}")
            return response, retried
        raise AssertionError("unreachable")


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def run_chain(clients: Clients, home: int, n: int, tokens: dict, patient: dict,
              inbox) -> None:
    """One full chain over HTTP, as the patient, a doctor, a pharmacist and the admin."""
    headers = {"Accept": "application/fhir+json"}
    study_id = None
    while study_id is None:
        response, _ = clients.call(
            home, "POST", "/fhir/ImagingStudy/$upload", retry=False,
            headers={**headers, **patient["token"]},
            files={"file": (f"chest-{n}.png", factories.xray_png(seed=1000 + n), "image/png")})
        if response is not None:
            assert response.status_code == 201, response.text
            study_id = response.json()["id"]
            break
        # The connection failed: the node may have stored the scan before it died (a PNG
        # upload carries no key to deduplicate it), so look before uploading again.
        home += 1
        found, _ = clients.call(home, "GET", f"/fhir/ImagingStudy?patient={patient['id']}",
                                headers={**headers, **patient["token"]})
        assert found.status_code == 200, found.text
        entries = found.json().get("entry", [])
        if entries:
            study_id = entries[0]["resource"]["id"]
    with clients.lock:
        clients.uploads += 1

    def state() -> str:
        answer, _ = clients.call(home, "GET", f"/fhir/Task?focus=ImagingStudy/{study_id}",
                                 headers={**headers, **tokens["doctor"][n % 2]})
        assert answer.status_code == 200, answer.text
        return answer.json()["entry"][0]["resource"]["businessStatus"]["text"]

    wait_for(f"the AI on chain {n}", lambda: state() == "AI_ANALYZED", STEP_SECONDS)
    steps = (("verify", "doctor", factories.parameters(
                note="Seen under scale-out.", agree=False, finding="Normal"), 201),
             ("pharmacy-review", "pharmacist", factories.parameters(note="No interactions."),
              200),
             ("approve", "admin", None, 201))
    for step, role, body, expected in steps:
        response, retried = clients.call(
            home, "POST", f"/fhir/ImagingStudy/{study_id}/${step}", json=body,
            headers={**headers, **tokens[role][n % len(tokens[role])]})
        # A connection lost after the node committed: the retry meets the step already done.
        if not (retried and response.status_code == 409):
            assert response.status_code == expected, (step, response.text)
    # DRAIN_SECONDS: an e-mail the killed worker had claimed waits for its claim to lapse.
    wait_for(f"the report e-mail of chain {n}", lambda: inbox.to(patient["email"]),
             DRAIN_SECONDS)


def test_two_nodes_and_two_workers_survive_sigkill_and_do_every_job_once(
        tmp_path, new_database, smtp_server):
    from sqlalchemy import func, select

    from csss_fhir import create_app
    from csss_fhir.models import AiJob, AiPrediction, MailMessage, Task, db

    settings = factories.settings_for(
        tmp_path / "seed", new_database(), storage_backend="postgresql",
        confidence_threshold=0.0)
    app = create_app(settings)
    with app.app_context():
        patients = [factories.make_login(app, "patient") for _ in range(CHAINS)]
        staff = {role: [factories.make_login(app, role) for _ in range(count)]
                 for role, count in (("doctor", 2), ("pharmacist", 2), ("admin", 1))}
        db.session.remove()
        db.engine.dispose()

    nodes: list[Node] = []
    apps = []
    for name in ("app-a", "app-b"):
        folder = tmp_path / name
        folder.mkdir()
        apps.append(AppNode(name, node_environment(settings, smtp_server.port, folder), folder))
    workers = []
    for name, beat in (("worker-a", "--beat"), ("worker-b", "--no-beat")):
        folder = tmp_path / name
        folder.mkdir()
        workers.append(Node(name, [sys.executable, "-c", "from csss_fhir.cli import cli; cli()",
                                   "worker", "--concurrency", str(WORKER_CONCURRENCY), beat],
                            node_environment(settings, smtp_server.port, folder), folder))
    nodes = [*apps, *workers]
    try:
        for node in apps:
            node.wait_ready()
        clients = Clients(apps)
        a = apps[0]

        def otp(email: str) -> str:
            message = wait_for("the sign-in code", lambda: smtp_server.to(email), 60)[-1]
            return re.search(r"\b(\d{6})\b",
                             message.get_body(("plain",)).get_content()).group(1)

        tokens = {role: [factories.login(a, user, one_time_code=otp) for user in users]
                  for role, users in staff.items()}
        chains = [{"email": p.email, "id": p.patient_id, "token": factories.login(a, p)}
                  for p in patients]

        def client(c: int) -> None:
            try:
                for n in range(c, CHAINS, CLIENTS):
                    run_chain(clients, c % 2, n, tokens, chains[n], smtp_server)
            except BaseException as err:  # reported by the main thread
                with clients.lock:
                    clients.errors.append(err)

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        wait_for("a third of the uploads", lambda: clients.uploads >= KILL_AFTER_UPLOADS
                 or not any(t.is_alive() for t in threads), STEP_SECONDS)
        apps[1].kill()
        workers[1].kill()
        killed_at = time.monotonic() - started
        time.sleep(2)
        apps[1].start()
        workers[1].start()
        apps[1].wait_ready()
        for thread in threads:
            thread.join(timeout=DRAIN_SECONDS + 2 * STEP_SECONDS)
        assert not [t for t in threads if t.is_alive()], "a client never finished"
        chains_done = time.monotonic() - started
        assert clients.errors == [], clients.errors[:3]
        assert clients.server_errors == [], clients.server_errors[:5]

        with app.app_context():
            def drained() -> bool:
                db.session.rollback()  # a new snapshot
                return not db.session.scalar(select(func.count()).select_from(Task).where(
                    Task.state == "PENDING_AI")) and not db.session.scalar(
                    select(func.count()).select_from(MailMessage).where(
                        MailMessage.status.in_(("pending", "sending"))))

            wait_for("the sweep to finish every job", drained, DRAIN_SECONDS)
            time.sleep(6)  # three sweeps more: none may run a job again
            db.session.rollback()
            s = db.session
            tasks = s.scalars(select(Task)).all()
            assert len(tasks) == CHAINS
            assert Counter(t.state for t in tasks) == {"REPORT_READY": CHAINS}
            # Classified exactly once: one prediction per scan, none superseded; an attempt
            # beyond the first only for a scan the killed worker held (each of its jobs
            # held a batch of up to AI_BATCH scans).
            predictions = s.scalars(select(AiPrediction)).all()
            assert Counter(p.scan_id for p in predictions) == {t.scan_id: 1 for t in tasks}
            assert [p for p in predictions if p.superseded_by_id] == []
            jobs = s.scalars(select(AiJob)).all()
            assert len(jobs) == CHAINS and all(j.attempts >= 1 for j in jobs)
            assert sum(j.attempts for j in jobs) - CHAINS <= WORKER_CONCURRENCY * AI_BATCH
            assert [j.last_error for j in jobs if j.last_error] == []
            reports = s.scalars(select(MailMessage).where(MailMessage.kind == "report")).all()
            assert sorted(r.recipient for r in reports) == sorted(p.email for p in patients)
            assert s.scalar(select(func.count()).select_from(MailMessage).where(
                MailMessage.status.in_(("pending", "sending")))) == 0
            db.session.remove()
            db.engine.dispose()

        # E-mailed exactly once, counted at the sink by Message-ID.
        delivered = Counter(m["Message-ID"] for m in smtp_server.messages)
        for report in reports:
            assert delivered[report.message_id] == 1, (report.status, delivered[report.message_id])
            assert report.status in ("sent", "uncertain")
        report_ids = {r.message_id for r in reports}
        assert sum(1 for m in smtp_server.messages if m["Message-ID"] in report_ids) == CHAINS
        print(f"\n{CLIENTS} clients, {CHAINS} chains in {chains_done:.0f} s; killed app-b and "
              f"worker-b at {killed_at:.0f} s; statuses {dict(clients.statuses)}; connection "
              f"errors {dict(clients.connection_errors)}; AI attempts "
              f"{sum(j.attempts for j in jobs)}; uncertain e-mails "
              f"{sum(r.status == 'uncertain' for r in reports)}")
    except BaseException:
        for node in nodes:
            print(node.tail())
        raise
    finally:
        for node in nodes:
            node.stop()
