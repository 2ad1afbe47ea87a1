from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.fhir.task import STATE_SYSTEM, to_fhir_task
from tests.factories import emitted, row


def task(state: str = "AI_ANALYZED", **fields):
    values = {"id": "task-1", "state": state, "scan_id": "scan-1", "patient_id": "pat-1",
              "created_at": datetime(2025, 3, 14, 8, tzinfo=UTC), "priority": "routine",
              "status_reason": None}
    return row(**{**values, **fields})


@pytest.mark.parametrize(("state", "status"), [
    ("PENDING_AI", "requested"), ("AI_ANALYZED", "in-progress"),
    ("DOCTOR_VERIFIED", "in-progress"), ("PHARMACIST_COMPLETED", "in-progress"),
    ("REPORT_READY", "completed"), ("RETURNED", "rejected"),
])
def test_the_workflow_state_is_the_business_status_and_maps_to_a_task_status(state, status):
    data = emitted(to_fhir_task(task(state)), "Task")
    assert data["status"] == status
    assert data["businessStatus"] == {"coding": [{"system": STATE_SYSTEM, "code": state}],
                                      "text": state}


def test_a_task_focuses_on_the_study_for_the_patient():
    data = emitted(to_fhir_task(task()), "Task")
    assert data["intent"] == "order"
    assert data["focus"] == {"reference": "ImagingStudy/scan-1"}
    assert data["for"] == {"reference": "Patient/pat-1"}
    assert "output" not in data


def test_a_finished_task_outputs_its_report():
    data = emitted(to_fhir_task(task("REPORT_READY"), report_id="rep-1"), "Task")
    assert data["output"] == [{"type": {"text": "DiagnosticReport"},
                               "valueReference": {"reference": "DiagnosticReport/rep-1"}}]


def test_a_returned_task_says_why_in_its_status_reason():
    data = emitted(to_fhir_task(task("RETURNED", status_reason="The image is blurred.")), "Task")
    assert data["status"] == "rejected"
    assert data["statusReason"] == {"text": "The image is blurred."}


def test_the_doctors_priority_is_the_task_priority():
    assert emitted(to_fhir_task(task()), "Task")["priority"] == "routine"
    assert emitted(to_fhir_task(task(priority="urgent")), "Task")["priority"] == "urgent"


def test_an_unknown_state_is_a_bug_not_a_task():
    with pytest.raises(KeyError):
        to_fhir_task(task("LOST"))


def test_task_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_task(task("REPORT_READY"), report_id="rep-1"), "Task"))
    hl7_schema(emitted(to_fhir_task(task("RETURNED", status_reason="Blurred.")), "Task"))
