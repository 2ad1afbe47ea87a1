"""workflow.classification: a doctor's $classify now or again, one winner against the job,
and the rule that nobody agrees with "Not assessable"."""

from __future__ import annotations

import io

import pytest

from csss_fhir import workflow
from csss_fhir.extensions import services
from csss_fhir.jobs import tasks
from csss_fhir.models import AiPrediction, Scan
from csss_fhir.resources import render
from csss_fhir.workflow import classification
from csss_fhir.workflow.errors import FindingRequiredError, WrongStateError
from tests.factories import (
    actor_for,
    held_jobs,
    make_scan,
    make_user,
    parameters,
    parse_fhir,
    xray_png,
)


def rows(session, scan_id: str) -> list[AiPrediction]:
    session.expire_all()
    return session.query(AiPrediction).filter_by(scan_id=scan_id).order_by(
        AiPrediction.created_at).all()


def test_a_re_run_supersedes_the_proposal_and_keeps_the_old_one(session):
    scan_id, _ = make_scan("AI_ANALYZED")
    [first] = rows(session, scan_id)
    version = session.get(Scan, scan_id).task.version_id
    doctor = actor_for(make_user("doctor")[0])
    second = workflow.classify(session, services(), doctor, scan_id, if_match=f'W/"{version}"')
    old, new = rows(session, scan_id)
    assert (old.id, new.id) == (first.id, second.id)
    assert old.superseded_by_id == new.id and new.superseded_by_id is None
    assert session.get(Scan, scan_id).prediction.id == new.id
    assert session.get(Scan, scan_id).task.state == "AI_ANALYZED"
    assert new.requested_by_id == doctor.user_id
    previous = parse_fhir(render(old).model_dump_json(), "Observation")
    assert previous.status == "preliminary"  # older, not wrong: never cancelled
    assert f"Observation/{new.id}" in previous.note[0].text


def test_a_verified_scan_is_not_classified_again(session):
    scan_id, _ = make_scan("DOCTOR_VERIFIED")
    with pytest.raises(WrongStateError, match="verified scan's"):
        workflow.classify(session, services(), actor_for(make_user("doctor")[0]), scan_id)
    assert len(rows(session, scan_id)) == 1


def test_the_job_after_a_doctor_classified_is_a_no_op(session):
    scan_id, _ = make_scan("PENDING_AI")
    workflow.classify(session, services(), actor_for(make_user("doctor")[0]), scan_id)
    assert tasks.classify_scan(session, services(), scan_id) == "skipped"
    assert classification.classify_new_scan(session, services(), scan_id) is None
    assert len(rows(session, scan_id)) == 1


def test_a_classification_that_lost_the_race_writes_nothing(session, monkeypatch):
    """The job reads PENDING_AI, then a doctor classifies while the model runs: the job's
    result is dropped, and the doctor's is the one proposal."""
    scan_id, _ = make_scan("PENDING_AI")
    svc = services()
    classifier = svc.classifier.get()
    real = classifier.predict
    doctor = actor_for(make_user("doctor")[0])

    def slow_predict(image, threshold):
        monkeypatch.setattr(classifier, "predict", real)
        workflow.classify(session, svc, doctor, scan_id)  # the doctor wins meanwhile
        return real(image, threshold=threshold)

    monkeypatch.setattr(classifier, "predict", slow_predict)
    assert classification.classify_new_scan(session, svc, scan_id) is None
    [only] = rows(session, scan_id)
    assert only.requested_by_id == doctor.user_id


def test_verify_refuses_agreement_with_not_assessable(session):
    scan_id, _ = make_scan("PENDING_AI")
    classification.record_not_assessable(session, services(), scan_id, "not a radiograph")
    doctor = actor_for(make_user("doctor")[0])
    with pytest.raises(FindingRequiredError, match="Not assessable: not a radiograph"):
        workflow.verify(session, doctor, scan_id, note="n", agree=True, finding=None)
    session.rollback()
    with pytest.raises(FindingRequiredError):
        workflow.verify(session, doctor, scan_id, note="n", agree=True, finding="Normal")
    session.rollback()
    review = workflow.verify(session, doctor, scan_id, note="Clear.", agree=False,
                             finding="Normal")
    assert review.finding == "Normal" and review.agree is False


def test_fhir_classify_re_runs_and_verify_on_not_assessable_is_400(app, client, as_role):
    patient, doctor = as_role("patient"), as_role("doctor")
    with held_jobs(app):
        response = client.post("/fhir/ImagingStudy/$upload", headers=patient,
                               data={"file": (io.BytesIO(xray_png()), "chest.png")},
                               content_type="multipart/form-data")
    study_id = response.get_json()["id"]
    with app.app_context():
        from csss_fhir.models import db

        classification.record_not_assessable(db.session, services(), study_id,
                                             "the image is too small")
    verify = client.post(f"/fhir/ImagingStudy/{study_id}/$verify", headers=doctor,
                         json=parameters(note="Seen.", agree=True))
    assert verify.status_code == 400
    assert "Not assessable" in verify.get_data(as_text=True)
    rerun = client.post(f"/fhir/ImagingStudy/{study_id}/$classify", headers=doctor)
    assert rerun.status_code == 201, rerun.get_data(as_text=True)
    observation = parse_fhir(rerun.data, "Observation")
    assert observation.status == "preliminary"
    assert observation.valueCodeableConcept.text != "Not assessable"
