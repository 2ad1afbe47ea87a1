"""Workflow Task -> FHIR Task; `businessStatus.text` is the workflow state."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.task import Task as FhirTask

from adapters.fhir.common import instant, meta, reference

TASK_STATUS = {
    "PENDING_AI": "requested",
    "AI_ANALYZED": "in-progress",
    "DOCTOR_VERIFIED": "in-progress",
    "PHARMACIST_COMPLETED": "in-progress",
    "REPORT_READY": "completed",
    # Returned to the patient for a new image: the doctor declined to read this one.
    "RETURNED": "rejected",
}
# Task.priority: FHIR's request-priority codes for the doctor's routine | urgent.
TASK_PRIORITY = {"routine": "routine", "urgent": "urgent"}
STATE_SYSTEM = "urn:csss-fhir:codesystem:scan-workflow-state"


def to_fhir_task(task: Any, *, report_id: str | None = None) -> FhirTask:
    data: dict[str, Any] = {
        "resourceType": "Task",
        "id": task.id,
        "meta": meta(task),
        "status": TASK_STATUS[task.state],
        "businessStatus": {"coding": [{"system": STATE_SYSTEM, "code": task.state}],
                           "text": task.state},
        "intent": "order",
        "priority": TASK_PRIORITY[task.priority or "routine"],
        "code": {"text": "Review of an AI-assisted chest scan"},
        "focus": reference("ImagingStudy", task.scan_id),
        "for": reference("Patient", task.patient_id),
        "authoredOn": instant(task.created_at),
        "lastModified": instant(task.updated_at),
    }
    if task.status_reason:
        data["statusReason"] = {"text": task.status_reason}
    if report_id:
        data["output"] = [{"type": {"text": "DiagnosticReport"},
                           "valueReference": reference("DiagnosticReport", report_id)}]
    return FhirTask.model_validate(data)
