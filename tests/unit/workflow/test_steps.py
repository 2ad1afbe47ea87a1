"""$classify, $verify, prescriptions and $pharmacy-review: the Uncertain rule."""

from __future__ import annotations

import pytest

from csss_fhir import workflow
from csss_fhir.models import Scan, Task
from csss_fhir.workflow.errors import FindingRequiredError
from tests.factories import actor_for, make_scan, make_user, settings_for


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
