"""Production shape under contention: gunicorn with several worker processes on PostgreSQL.

50 clients race to take every workflow step on 20 scans at once. Each scan must end in
exactly one consistent state, with one row per step, one report and one e-mail, and no
request may fail with a 5xx. Runs in the PostgreSQL pass of CI (`scripts/with-postgres.sh`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import requests

from tests import factories
from tests.conftest import TEST_DATABASE_URL
from tests.factories import login, make_login, make_scan, parameters, parse_fhir
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    TEST_DATABASE_URL is None,
    reason="needs PostgreSQL: set CSSS_TEST_DATABASE_URL (bash scripts/with-postgres.sh ...)")]

ROOT = Path(__file__).resolve().parents[2]
SCANS = 20
FIRSTS = 10  # scans classified at once, one client each, before the model has a Device row
CLIENTS = 50
WORKERS = 4
# $classify on an AI_ANALYZED scan is a re-run, so racing clients name the version they saw
# (If-Match on the Task, version 1 in PENDING_AI): one wins, the others get 409 or 412.
CLASSIFY_IF_MATCH = {"If-Match": 'W/"1"'}
STEPS = (  # (operation, role, body, status of the one winner)
    ("classify", "doctor", None, 201),
    ("verify", "doctor", parameters(note="Reviewed under load.", agree=False, finding="Normal"),
     201),
    ("pharmacy-review", "pharmacist", parameters(note="No interactions."), 200),
    ("approve", "admin", None, 201),
)


class Gunicorn:
    """`gunicorn -c docker/gunicorn.conf.py wsgi:app` as a subprocess on a loopback port."""

    def __init__(self, env: dict[str, str], cwd: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / "gunicorn.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker" / "gunicorn.conf.py"),
             "--pythonpath", str(ROOT), "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", "4", "wsgi:app"],
            cwd=cwd, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("gunicorn exited:\n" + self.log.read_text()[-4000:])
            try:
                if requests.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or busy loading
                pass
            time.sleep(0.2)
        raise AssertionError("gunicorn never became ready:\n" + self.log.read_text()[-4000:])

    def stop(self) -> int:
        """SIGTERM: gunicorn's graceful shutdown."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def gunicorn_environment(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")}
    env.update({
        "CSSS_ENV": "testing", "CSSS_INSTANCE_PATH": str(settings.instance_path),
        "SECRET_KEY": settings.secret_key, "JWT_SECRET_KEY": settings.jwt_secret_key,
        "DATABASE_URL": settings.database_url, "BCRYPT_ROUNDS": "4", "MAIL_BACKEND": "file",
        "MAIL_FROM": "CSSS Test <reports@test.local>", "HOSPITAL_NAME": "St. Test General",
        "CONFIDENCE_THRESHOLD": "0.0", "DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "4",
        # Logins all come from 127.0.0.1; the per-address auth limit is not under test here.
        "AUTH_RATE_LIMIT_ADDRESS": "10000 per minute",
        "AUTH_RATE_LIMIT_ACCOUNT": "10000 per minute",
        "GUNICORN_ACCESSLOG": str(Path(settings.instance_path) / "access.log"),
    })
    return env


def race(url_for, scan_ids: list[str], headers: list[dict], body,
         extra_headers: dict | None = None) -> dict[str, list]:
    """CLIENTS threads start together; each takes the step on every scan in its own order.
    Returns the (status, body) of every response, by scan."""
    barrier = threading.Barrier(CLIENTS)
    results: dict[str, list] = defaultdict(list)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client(n: int) -> None:
        order = list(scan_ids)
        random.Random(n).shuffle(order)
        with requests.Session() as http:
            http.headers.update(headers[n % len(headers)])
            http.headers.update(extra_headers or {})
            barrier.wait()
            for scan_id in order:
                try:
                    response = http.post(url_for(scan_id), json=body, timeout=120)
                except requests.RequestException as err:  # a dropped connection is a failure
                    with lock:
                        errors.append(err)
                    continue
                with lock:
                    results[scan_id].append((response.status_code, response.content))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def first_classifications(url: str, scan_ids: list[str], headers: dict) -> list[int]:
    barrier = threading.Barrier(len(scan_ids))
    statuses = []

    def classify(scan_id: str) -> None:
        barrier.wait()
        response = requests.post(f"{url}/fhir/ImagingStudy/{scan_id}/$classify",
                                 headers=headers, timeout=120)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=classify, args=(s,)) for s in scan_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_fifty_clients_racing_every_step_on_gunicorn_leave_each_scan_consistent(
        tmp_path, settings):
    from sqlalchemy import func, select

    from csss_fhir import create_app
    from csss_fhir.models import (
        AiPrediction,
        DoctorReview,
        MailMessage,
        PharmacyReview,
        Report,
        Task,
        WorkflowEvent,
        db,
    )

    app = create_app(settings)
    with app.app_context():
        patients = {}
        scan_ids = []
        for _ in range(SCANS):
            scan_id, patient = make_scan("PENDING_AI")
            scan_ids.append(scan_id)
            patients[scan_id] = patient.email
        firsts = [make_scan("PENDING_AI")[0] for _ in range(FIRSTS)]
        staff = {role: [make_login(app, role) for _ in range(3)]
                 for role in ("doctor", "pharmacist", "admin")}
        db.session.remove()
        db.engine.dispose()

    server = Gunicorn(gunicorn_environment(settings), tmp_path, WORKERS)
    try:
        server.wait_ready()
        client = app.test_client()  # tokens: the same keys and database as the server
        tokens = {role: [login(client, user) for user in users]
                  for role, users in staff.items()}
        # Different scans at once never conflict, not even when they are the first ones the
        # model classifies (all of them create its Device row).
        firsts_done = first_classifications(server.url, firsts, tokens["doctor"][0])
        assert firsts_done == [201] * FIRSTS
        for step, role, body, winner_status in STEPS:
            results = race(lambda s, step=step: f"{server.url}/fhir/ImagingStudy/{s}/${step}",
                           scan_ids, tokens[role], body,
                           CLASSIFY_IF_MATCH if step == "classify" else None)
            statuses = Counter(code for responses in results.values() for code, _ in responses)
            assert not [c for c in statuses if c >= 500], (step, statuses)
            for scan_id in scan_ids:
                # A classify loser that read the new version before it started gets 412.
                codes = Counter(409 if (step, code) == ("classify", 412) else code
                                for code, _ in results[scan_id])
                assert codes == {winner_status: 1, 409: CLIENTS - 1}, (step, scan_id, codes)
                for code, content in results[scan_id]:
                    if code == winner_status:
                        parse_fhir(content)
            loser = next(b for c, b in results[scan_ids[0]] if c in (409, 412))
            parse_fhir(loser, "OperationOutcome")
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.log.read_text()[-4000:]

    with app.app_context():
        s = db.session
        tasks = s.scalars(select(Task).where(Task.scan_id.in_(scan_ids))).all()
        assert {t.state for t in tasks} == {"REPORT_READY"}
        assert {t.version_id for t in tasks} == {1 + len(STEPS)}
        for model in (AiPrediction, DoctorReview, PharmacyReview, Report):
            per_scan = Counter(s.scalars(select(model.scan_id).where(
                model.scan_id.in_(scan_ids))).all())
            assert per_scan == dict.fromkeys(scan_ids, 1), model.__name__
        events = Counter(s.execute(select(WorkflowEvent.scan_id, WorkflowEvent.step).where(
            WorkflowEvent.scan_id.in_(scan_ids))).all())
        assert set(events.values()) == {1}
        assert len(events) == SCANS * (1 + len(STEPS))
        mails = s.execute(select(MailMessage.recipient, MailMessage.status).where(
            MailMessage.kind == "report")).all()
        assert sorted(mails) == sorted((patients[sid], "sent") for sid in scan_ids)
        assert s.scalar(select(func.count()).select_from(Report)) == SCANS
    delivered = Counter(m["To"] for m in factories.outbox_messages(app)
                        if m["To"] in set(patients.values()))
    assert delivered == dict.fromkeys(patients.values(), 1)
