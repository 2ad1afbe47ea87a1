"""What every step shares: role before state, a refused step changes nothing, If-Match names
the Task's version, and every transition leaves provenance and versions."""

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
from csss_fhir.workflow.errors import StepNotAllowedError, WrongStateError
from csss_fhir.workflow.tasks import check_version, etag_version
from tests.factories import actor_for, make_scan, make_user


def snapshot(session) -> tuple:
    """Everything a refused step must leave untouched."""
    counts = tuple(session.scalar(select(func.count()).select_from(m)) for m in (
        AiPrediction, DoctorReview, Report, WorkflowEvent, ResourceVersion))
    tasks = tuple(session.execute(select(Task.id, Task.state, Task.version_id)).all())
    return counts, tasks


@pytest.mark.parametrize("state, step", [
    ("PENDING_AI", "verify"), ("PENDING_AI", "pharmacy_review"), ("PENDING_AI", "approve"),
    ("DOCTOR_VERIFIED", "classify"), ("AI_ANALYZED", "pharmacy_review"),
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


@pytest.mark.parametrize("header", ['W/"3"', '"3"', "3", ' W/"3" '])
def test_if_match_names_a_version_with_or_without_the_weak_prefix_and_quotes(header):
    assert etag_version(header) == "3"


def test_a_stale_if_match_is_refused_with_the_current_version_named():
    with pytest.raises(PreconditionFailedError, match=r"version 2 of Task/t1; the current "
                                                      r"version is 3"):
        check_version('W/"2"', reference="Task/t1", current=3)
    check_version('W/"3"', reference="Task/t1", current=3)
    check_version(None, reference="Task/t1", current=3)
