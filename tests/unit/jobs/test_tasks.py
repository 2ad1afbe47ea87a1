"""jobs.tasks: classify on upload, one classification per scan, retries that end in
"Not assessable", and the sweep that finds lost work."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from csss_fhir.extensions import services
from csss_fhir.jobs import tasks
from csss_fhir.models import AiJob, AiPrediction, MailMessage, Scan, WorkflowEvent, utcnow
from csss_fhir.resources import render
from tests.factories import (
    actor_for,
    current_app_object,
    held_jobs,
    make_scan,
    make_user,
    parse_fhir,
    xray_png,
)


def waiting_scan() -> str:
    """A scan in PENDING_AI whose classification job was held back (as if lost)."""
    scan_id, _ = make_scan("PENDING_AI")
    return scan_id


def predictions(session, scan_id: str) -> list[AiPrediction]:
    session.expire_all()
    return list(session.query(AiPrediction).filter_by(scan_id=scan_id))


def test_upload_queues_one_job_that_classifies_the_scan_once(session):
    from csss_fhir import workflow

    svc = services()
    patient = make_user("patient")[0]
    with held_jobs(current_app_object()) as held:
        scan_id = workflow.upload_scan(session, svc, actor_for(patient), workflow.UploadRequest(
            data=xray_png(), patient_id=None)).id
    assert held == [("classify_scan", scan_id)]  # after the commit, keyed by the scan
    assert tasks.classify_scan(session, svc, scan_id) == "classified"
    assert tasks.classify_scan(session, svc, scan_id) == "skipped"  # a duplicate message
    [prediction] = predictions(session, scan_id)
    assert prediction.requested_by_id is None and prediction.assessable
    assert session.get(Scan, scan_id).task.state == "AI_ANALYZED"
    event = session.query(WorkflowEvent).filter_by(scan_id=scan_id, step="classify").one()
    assert event.actor_client == "csss-jobs" and event.device_id == prediction.device_id


def test_a_rolled_back_transaction_sends_no_job(session):
    from csss_fhir import jobs

    with held_jobs(current_app_object()) as held:
        session.execute(select(1))  # in a transaction, as every command is
        jobs.enqueue(session, jobs.SEND_MAIL, "never-committed")
        session.rollback()
        session.commit()
    assert held == []


def test_a_failing_classification_retries_then_ends_not_assessable(session, monkeypatch):
    scan_id = waiting_scan()
    svc = services()

    def broken():
        raise RuntimeError("model server down")

    monkeypatch.setattr(svc.classifier, "get", broken)
    assert svc.settings.ai_max_attempts == 3
    before = utcnow()
    assert tasks.classify_scan(session, svc, scan_id) == "retrying"
    job = session.get(AiJob, scan_id)
    assert job.attempts == 1 and job.claimed_until is None
    assert job.last_error == "RuntimeError on attempt 1"
    assert job.due_at >= before + timedelta(seconds=tasks.AI_FIRST_RETRY_SECONDS)
    assert tasks.classify_scan(session, svc, scan_id) == "retrying"
    assert session.get(Scan, scan_id).task.state == "PENDING_AI"
    assert tasks.classify_scan(session, svc, scan_id) == "not-assessable"
    session.expire_all()
    scan = session.get(Scan, scan_id)
    assert scan.task.state == "AI_ANALYZED"
    prediction = scan.prediction
    assert not prediction.assessable and prediction.label == "Not assessable"
    assert "failed 3 times" in prediction.reason and prediction.device_id is None
    assert tasks.classify_scan(session, svc, scan_id) == "skipped"  # final: no loop
    observation = parse_fhir(render(prediction).model_dump_json(), "Observation")
    assert observation.valueCodeableConcept.coding[0].code == "not-assessable"
    assert observation.device is None


def test_an_undecodable_image_is_not_assessable_at_the_first_attempt(session):
    scan_id = waiting_scan()
    svc = services()
    scan = session.get(Scan, scan_id)
    svc.store.path_for(scan.image.sha256).write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    assert tasks.classify_scan(session, svc, scan_id) == "classified"
    session.expire_all()
    prediction = session.get(Scan, scan_id).prediction
    assert not prediction.assessable and "could not be decoded" in prediction.reason
    assert prediction.device_id is not None  # the model was there; the image was not


def test_a_verdict_of_not_assessable_is_stored_with_its_reason(session, monkeypatch):
    scan_id = waiting_scan()
    svc = services()
    classifier = svc.classifier.get()
    real = classifier.predict

    def judged(image, threshold):
        result = real(image, threshold=threshold)
        return dataclasses.replace(result, assessable=False, reason="not_radiograph")

    monkeypatch.setattr(classifier, "predict", judged)
    tasks.classify_scan(session, svc, scan_id)
    session.expire_all()
    prediction = session.get(Scan, scan_id).prediction
    assert (prediction.assessable, prediction.reason) == (
        False, "the image does not look like a frontal chest radiograph")
    assert prediction.label == "Not assessable" and prediction.uncertain
    data = parse_fhir(render(prediction).model_dump_json(), "Observation")
    assert data.valueCodeableConcept.text == "Not assessable"
    assert [c.valueString for c in data.component] == [
        "the image does not look like a frontal chest radiograph"]


def test_one_job_classifies_the_waiting_backlog_each_scan_with_its_own_result(session):
    svc = services()
    images = [xray_png(seed=n) for n in range(4)]
    scan_ids = [make_scan("PENDING_AI", image=image)[0] for image in images]
    assert tasks.classify_scan(session, svc, scan_ids[1]) == "classified"
    session.expire_all()
    classifier = svc.classifier.get()
    for scan_id, image in zip(scan_ids, images, strict=True):
        [prediction] = predictions(session, scan_id)  # once each
        assert prediction.probabilities == classifier.predict(image).probabilities
        assert session.get(Scan, scan_id).task.state == "AI_ANALYZED"
        job = session.get(AiJob, scan_id)
        assert (job.attempts, job.claimed_until, job.last_error) == (1, None, None)
    # Their own messages arrive later: nothing left to do.
    assert [tasks.classify_scan(session, svc, s) for s in scan_ids] == ["skipped"] * 4


def test_a_batch_takes_at_most_ai_batch_scans_and_leaves_retries_to_their_back_off(
        session, monkeypatch):
    svc = services()
    monkeypatch.setattr(tasks, "AI_BATCH", 2)
    first, second, third, retried = (waiting_scan() for _ in range(4))
    session.get(AiJob, retried).attempts = 1  # failed once: due after its back-off
    session.get(AiJob, retried).due_at = utcnow() - timedelta(minutes=1)  # the oldest
    session.commit()
    assert tasks.classify_scan(session, svc, third) == "classified"
    session.expire_all()
    states = {s: session.get(Scan, s).task.state for s in (first, second, third, retried)}
    assert states == {first: "AI_ANALYZED", second: "PENDING_AI", third: "AI_ANALYZED",
                      retried: "PENDING_AI"}


def test_a_failing_scan_in_a_batch_is_retried_alone_and_the_others_are_classified(
        session, monkeypatch):
    svc = services()
    broken, healthy = (make_scan("PENDING_AI", image=xray_png(seed=n))[0] for n in (1, 2))
    svc.store.path_for(session.get(Scan, broken).image.sha256).write_bytes(b"not an image")
    classifier = svc.classifier.get()
    real = classifier.predict

    def failing_for_garbage(image, threshold):
        if image == b"not an image":
            raise RuntimeError("model server down")
        return real(image, threshold=threshold)

    monkeypatch.setattr(classifier, "predict", failing_for_garbage)
    assert tasks.classify_scan(session, svc, broken) == "retrying"
    session.expire_all()
    assert session.get(Scan, healthy).task.state == "AI_ANALYZED"
    job = session.get(AiJob, broken)
    assert (job.attempts, job.claimed_until, job.last_error) == (
        1, None, "RuntimeError on attempt 1")
    assert session.get(Scan, broken).task.state == "PENDING_AI"


def test_a_batch_whose_worker_dies_leaves_its_scans_to_the_sweep(session, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from csss_fhir.workflow import classification

    svc = services()
    scan_ids = [waiting_scan() for _ in range(3)]

    def database_gone(*args):
        raise OperationalError("UPDATE", {}, Exception("connection lost"))

    monkeypatch.setattr(classification, "classify_new_scan", database_gone)
    with pytest.raises(OperationalError):
        tasks.classify_scan(session, svc, scan_ids[0])
    monkeypatch.undo()
    session.rollback()
    claimed = [session.get(AiJob, s) for s in scan_ids]
    assert all(job.claimed_until is not None for job in claimed)  # the whole batch
    assert tasks.sweep(session, svc) == []  # held until the claims lapse
    for job in claimed:
        job.claimed_until = job.due_at = utcnow() - timedelta(seconds=1)
    session.commit()
    due = tasks.sweep(session, svc)
    assert sorted(key for job, key in due if job == tasks.CLASSIFY_SCAN) == sorted(scan_ids)
    # Each re-run is a retry (attempt 2): its own message runs it, in no batch.
    assert [tasks.classify_scan(session, svc, s) for s in scan_ids] == ["classified"] * 3
    assert all(len(predictions(session, s)) == 1 for s in scan_ids)


def test_the_sweep_re_enqueues_a_scan_past_its_deadline_once(session):
    scan_id = waiting_scan()
    svc = services()
    assert (tasks.CLASSIFY_SCAN, scan_id) not in tasks.sweep(session, svc)  # not due yet
    session.get(AiJob, scan_id).due_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert (tasks.CLASSIFY_SCAN, scan_id) in tasks.sweep(session, svc)
    assert (tasks.CLASSIFY_SCAN, scan_id) not in tasks.sweep(session, svc)  # due later
    assert session.get(AiJob, scan_id).due_at > utcnow() + timedelta(
        seconds=svc.settings.ai_deadline_seconds - 5)


def test_the_sweep_skips_classified_scans_and_finds_due_mail(session):
    scan_id, _ = make_scan("AI_ANALYZED")
    session.get(AiJob, scan_id).due_at = utcnow() - timedelta(seconds=1)
    session.commit()
    from csss_fhir.mail import outbox

    with held_jobs(current_app_object()):
        row = outbox.enqueue(session, outbox.compose(
            sender=services().settings.mail_from, recipient="p@test.local", subject="s",
            text="t"), kind="report")
        session.commit()
    due = tasks.sweep(session, services())
    assert (tasks.CLASSIFY_SCAN, scan_id) not in due
    assert (tasks.SEND_MAIL, row.id) in due


def test_the_sweep_marks_a_sender_lost_after_data_uncertain(session):
    from csss_fhir.mail import outbox

    with held_jobs(current_app_object()):
        rows = [outbox.enqueue(session, outbox.compose(
            sender=services().settings.mail_from, recipient=f"p{i}@test.local", subject="s",
            text="t"), kind="report") for i in range(2)]
        session.commit()
    lapsed = utcnow() - timedelta(seconds=1)
    for row, data_started in zip(rows, (utcnow() - timedelta(seconds=5), None), strict=True):
        row.status, row.claimed_until, row.data_started_at = "sending", lapsed, data_started
    session.commit()
    due = tasks.sweep(session, services())
    session.expire_all()
    after_data, before_data = (session.get(MailMessage, r.id) for r in rows)
    assert after_data.status == "uncertain" and (tasks.SEND_MAIL, after_data.id) not in due
    assert before_data.status == "sending" and (tasks.SEND_MAIL, before_data.id) in due


def test_an_unknown_job_is_refused_with_the_known_names(app):
    with pytest.raises(ValueError, match="classify_scan"):
        tasks.run_job(app, "reticulate", None)
