"""jobs.runners: the in-process thread (no broker) and Celery with a broker that is down."""

from __future__ import annotations

import io
import logging
import shutil
import time

import pytest

from tests.factories import parse_fhir, settings_for, xray_png


@pytest.fixture
def make_app(tmp_path, migrated_template):
    from csss_fhir import create_app

    def make(**overrides):
        shutil.copy(migrated_template, tmp_path / "jobs.db")
        return create_app(settings_for(tmp_path / "instance", f"sqlite:///{tmp_path / 'jobs.db'}",
                                       **overrides))

    return make


def upload(client, headers) -> str:
    response = client.post("/fhir/ImagingStudy/$upload", headers=headers,
                           data={"file": (io.BytesIO(xray_png()), "chest.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    return parse_fhir(response.data, "ImagingStudy").id


def task_state(client, headers, study_id: str) -> str:
    bundle = parse_fhir(client.get(f"/fhir/Task?focus=ImagingStudy/{study_id}",
                                   headers=headers).data)
    return bundle.entry[0].resource.businessStatus.text


def login_as(app, role: str) -> dict[str, str]:
    from tests.factories import login, make_login

    return login(app.test_client(), make_login(app, role))


def test_without_a_broker_a_thread_classifies_the_upload_by_itself(make_app):
    app = make_app(jobs_mode="auto", jobs_sweep_seconds=0.5)
    assert app.extensions["csss_jobs"].name == "thread"
    client, headers = app.test_client(), login_as(app, "patient")
    study_id = upload(client, headers)
    deadline = time.monotonic() + 60
    while task_state(client, headers, study_id) != "AI_ANALYZED":
        assert time.monotonic() < deadline, "the job thread did not classify the scan"
        time.sleep(0.2)


def test_the_thread_sweep_finds_a_scan_whose_job_was_lost(make_app):
    from datetime import timedelta

    from csss_fhir.models import AiJob, db, utcnow
    from tests.factories import held_jobs

    app = make_app(jobs_mode="thread", jobs_sweep_seconds=0.3)
    client, headers = app.test_client(), login_as(app, "patient")
    runner = app.extensions["csss_jobs"]
    with held_jobs(app):  # the message is lost: only the database knows the scan waits
        study_id = upload(client, headers)
    with app.app_context():
        db.session.get(AiJob, study_id).due_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    runner.start()
    deadline = time.monotonic() + 60
    while task_state(client, headers, study_id) != "AI_ANALYZED":
        assert time.monotonic() < deadline, "the sweep did not find the waiting scan"
        time.sleep(0.2)


def test_a_broker_that_is_down_never_fails_the_upload(make_app, caplog):
    from tests.servers import free_port

    app = make_app(jobs_mode="celery",
                   celery_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    client, headers = app.test_client(), login_as(app, "patient")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="csss_fhir.jobs.runners"):
        study_id = upload(client, headers)
    assert time.monotonic() - started < 10
    assert task_state(client, headers, study_id) == "PENDING_AI"  # the sweep will run it
    assert any("broker unreachable" in r.getMessage() for r in caplog.records)


def test_the_thread_survives_a_failing_job_and_runs_the_next(make_app):
    from csss_fhir.jobs import runners

    app = make_app(jobs_mode="thread", jobs_sweep_seconds=3600)
    runner = app.extensions["csss_jobs"]
    client, headers = app.test_client(), login_as(app, "patient")
    runner.submit("no-such-job", "x")  # raises in the thread: logged, backed off
    study_id = upload(client, headers)
    deadline = time.monotonic() + 60
    while task_state(client, headers, study_id) != "AI_ANALYZED":
        assert time.monotonic() < deadline, "the job thread died with the failing job"
        time.sleep(0.2)
    assert runner._thread.is_alive() and runners.MAX_BACKOFF_SECONDS == 60.0
