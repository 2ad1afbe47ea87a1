"""Workflow commands: states, refusals that change nothing, the Uncertain rule, If-Match."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from csss_fhir import workflow
from csss_fhir.errors import PreconditionFailedError
from csss_fhir.extensions import services
from csss_fhir.models import (
    AiPrediction,
    DoctorReview,
    Report,
    ResourceVersion,
    Scan,
    Task,
    WorkflowEvent,
)
from csss_fhir.workflow.errors import FindingRequiredError, StepNotAllowedError, WrongStateError
from tests.factories import actor_for, make_scan, make_user, settings_for


def snapshot(session) -> tuple:
    """Everything a refused step must leave untouched."""
    counts = tuple(session.scalar(select(func.count()).select_from(m)) for m in (
        AiPrediction, DoctorReview, Report, WorkflowEvent, ResourceVersion))
    tasks = tuple(session.execute(select(Task.id, Task.state, Task.version_id)).all())
    return counts, tasks


@pytest.mark.parametrize("state, step", [
    ("PENDING_AI", "verify"), ("PENDING_AI", "pharmacy_review"), ("PENDING_AI", "approve"),
    ("AI_ANALYZED", "classify"), ("AI_ANALYZED", "pharmacy_review"),
    ("DOCTOR_VERIFIED", "verify"), ("DOCTOR_VERIFIED", "approve"),
    ("PHARMACIST_COMPLETED", "pharmacy_review"), ("REPORT_READY", "approve"),
])
def test_step_in_wrong_state_is_refused_and_changes_nothing(session, state, step):
    scan_id, _ = make_scan(state)
    role = {"classify": "doctor", "verify": "doctor", "pharmacy_review": "pharmacist",
            "approve": "admin"}[step]
    actor = actor_for(make_user(role)[0])
    before = snapshot(session)
    svc = services()
    calls = {
        "classify": lambda: workflow.classify(session, svc, actor, scan_id),
        "verify": lambda: workflow.verify(session, actor, scan_id, note="n", agree=True,
                                          finding=None),
        "pharmacy_review": lambda: workflow.pharmacy_review(session, actor, scan_id,
                                                            note="n"),
        "approve": lambda: workflow.approve(session, svc, actor, scan_id),
    }
    with pytest.raises(WrongStateError):
        calls[step]()
    session.rollback()
    assert snapshot(session) == before


def test_wrong_role_is_refused_before_state_is_looked_at(session):
    scan_id, patient = make_scan("AI_ANALYZED")
    with pytest.raises(StepNotAllowedError):
        workflow.verify(session, actor_for(patient), scan_id, note="n", agree=True,
                        finding=None)
    with pytest.raises(StepNotAllowedError):
        workflow.classify(session, services(), actor_for(make_user("admin")[0]), "nope")


@pytest.fixture
def uncertain_app(tmp_path, migrated_template):
    """An app whose threshold makes every AI result Uncertain."""
    import shutil

    from csss_fhir import create_app

    shutil.copy(migrated_template, tmp_path / "u.db")
    settings = settings_for(tmp_path / "instance", f"sqlite:///{tmp_path / 'u.db'}",
                             confidence_threshold=1.0)
    app = create_app(settings)
    with app.app_context():
        yield app


def test_uncertain_ai_result_needs_an_explicit_finding(uncertain_app):
    from csss_fhir.models import db

    session = db.session
    scan_id, _ = make_scan("AI_ANALYZED")
    prediction = session.get(Scan, scan_id).prediction
    assert prediction.uncertain and prediction.label == "Uncertain"
    assert prediction.confidence < 1.0
    doctor = actor_for(make_user("doctor")[0])
    with pytest.raises(FindingRequiredError):
        workflow.verify(session, doctor, scan_id, note="Looked at it.", agree=True,
                        finding=None)
    with pytest.raises(FindingRequiredError):
        workflow.verify(session, doctor, scan_id, note="Looked at it.", agree=False,
                        finding="Uncertain")
    session.rollback()
    review = workflow.verify(session, doctor, scan_id, note="Clear lungs.", agree=False,
                             finding="Normal")
    assert review.finding == "Normal" and review.agree is False
    assert session.get(Task, session.get(Scan, scan_id).task.id).state == "DOCTOR_VERIFIED"


def test_disagreeing_without_finding_is_refused(session):
    scan_id, _ = make_scan("AI_ANALYZED")
    doctor = actor_for(make_user("doctor")[0])
    with pytest.raises(FindingRequiredError):
        workflow.verify(session, doctor, scan_id, note="No.", agree=False, finding=None)


def test_if_match_must_name_the_current_task_version(session):
    scan_id, _ = make_scan("AI_ANALYZED")
    task = session.get(Scan, scan_id).task
    version = task.version_id
    doctor = actor_for(make_user("doctor")[0])
    with pytest.raises(PreconditionFailedError):
        workflow.verify(session, doctor, scan_id, note="n", agree=False, finding="Normal",
                        if_match=f'W/"{version + 5}"')
    session.rollback()
    review = workflow.verify(session, doctor, scan_id, note="n", agree=False,
                             finding="Normal", if_match=f'W/"{version}"')
    assert review.id


def test_every_transition_writes_provenance_and_versions(session):
    scan_id, _ = make_scan("REPORT_READY")
    steps = session.scalars(select(WorkflowEvent.step).where(
        WorkflowEvent.scan_id == scan_id).order_by(WorkflowEvent.created_at)).all()
    assert steps == ["upload", "classify", "verify", "pharmacy-review", "approve"]
    task = session.get(Scan, scan_id).task
    versions = session.scalars(select(ResourceVersion.version_id).where(
        ResourceVersion.resource_id == task.id)).all()
    assert sorted(versions) == list(range(1, task.version_id + 1)) == [1, 2, 3, 4, 5]


def test_patient_cannot_upload_for_another_patient(session):
    patient = make_user("patient")[0]
    other = make_user("patient")[0]
    request = workflow.UploadRequest(data=b"", patient_id=other.patient_id)
    with pytest.raises(StepNotAllowedError):
        workflow.upload_scan(session, services(), actor_for(patient), request)
