"""Background jobs for real: a Celery worker process (`csss worker`, with beat) against a
real redis-server (scripts/with-redis.sh) and an SMTP sink on loopback. Nothing is mocked.

upload -> the scan reaches AI_ANALYZED by itself; approve -> the report e-mail arrives at
the sink exactly once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from csss_fhir.workflow.states import ScanState
from tests import factories
from tests.servers import serve_app

REDIS_URL = os.environ.get("CSSS_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs Redis: bash scripts/with-redis.sh <pytest command>")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, check, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def celery_settings(tmp_path, new_database, smtp_server):
    return factories.settings_for(
        tmp_path / "instance", new_database(), jobs_mode="celery", celery_broker_url=REDIS_URL,
        jobs_sweep_seconds=2.0, mail_backend="smtp", smtp_host="127.0.0.1",
        smtp_port=smtp_server.port, smtp_security="none", smtp_timeout_seconds=5.0,
        mail_from="CSSS Test <reports@test.local>")


@pytest.fixture
def worker(celery_settings, tmp_path):
    """`csss worker` in its own process, configured through the environment only."""
    s = celery_settings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CSSS_ENV": "testing",
           "CSSS_INSTANCE_PATH": str(s.instance_path), "SECRET_KEY": s.secret_key,
           "JWT_SECRET_KEY": s.jwt_secret_key, "DATABASE_URL": s.database_url,
           "CELERY_BROKER_URL": REDIS_URL, "JOBS_SWEEP_SECONDS": "2", "MAIL_BACKEND": "smtp",
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(s.smtp_port), "SMTP_SECURITY": "none",
           "MAIL_FROM": s.mail_from, "BCRYPT_ROUNDS": "4"}
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from csss_fhir.cli import cli; cli()", "worker",
         "--concurrency", "2"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    if process.returncode not in (0, -15):
        print((tmp_path / "worker.log").read_text()[-4000:])


def test_worker_classifies_uploads_and_sends_each_report_once(celery_settings, worker,
                                                              smtp_server):
    from csss_fhir.checks import check_jobs

    with serve_app(celery_settings) as server:
        people = {role: factories.make_login(server.app, role)
                  for role in ("patient", "doctor", "pharmacist", "admin")}
        patient = factories.login(server, people["patient"])
        started = time.monotonic()
        upload = requests.post(server.fhir("ImagingStudy/$upload"), headers=patient,
                               files={"file": ("chest.png", factories.xray_png(), "image/png")},
                               timeout=30)
        assert upload.status_code == 201, upload.text
        assert time.monotonic() - started < 10  # the request did not wait for the AI
        study_id = upload.json()["id"]

        def state() -> str:
            bundle = requests.get(server.fhir(f"Task?focus=ImagingStudy/{study_id}"),
                                  headers=patient, timeout=30).json()
            return bundle["entry"][0]["resource"]["businessStatus"]["text"]

        wait_for("the worker to classify the scan", lambda: state() == ScanState.AI_ANALYZED)
        assert "worker(s) answer" in check_jobs(server.app)

        with server.app.app_context():
            from csss_fhir import workflow
            from csss_fhir.models import Scan, User, db

            doctor = factories.actor_for(db.session.get(User, people["doctor"].id))
            label = db.session.get(Scan, study_id).prediction
            workflow.verify(db.session, doctor, study_id, note="Seen in a test.",
                            agree=not label.uncertain,
                            finding="Normal" if label.uncertain else None)
            pharmacist = factories.actor_for(db.session.get(User, people["pharmacist"].id))
            workflow.pharmacy_review(db.session, pharmacist, study_id, note="Reviewed.")

        def otp(email: str) -> str:
            message = wait_for("the sign-in code e-mail", lambda: smtp_server.to(email))[-1]
            return re.search(r"\b(\d{6})\b",
                             message.get_body(("plain",)).get_content()).group(1)

        admin = factories.login(server, people["admin"], one_time_code=otp)
        approve = requests.post(server.fhir(f"ImagingStudy/{study_id}/$approve"),
                                headers=admin, timeout=30)
        assert approve.status_code == 201, approve.text
        patient_email = people["patient"].email
        wait_for("the report e-mail", lambda: smtp_server.to(patient_email))
        time.sleep(6)  # three sweeps: none may send it again
        assert len(smtp_server.to(patient_email)) == 1
        with server.app.app_context():
            from csss_fhir.models import MailMessage, db

            [row] = db.session.query(MailMessage).filter_by(kind="report").all()
            assert row.status == "sent" and row.attempts == 1
