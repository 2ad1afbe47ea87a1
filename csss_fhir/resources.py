"""Which domain table is served as which FHIR type, and how to render one row.

The FHIR blueprint, the version history and search all look types up here, so adding a
served type is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from adapters.fhir.audit_event import to_fhir_audit_event
from adapters.fhir.device import to_fhir_device
from adapters.fhir.diagnostic_report import to_fhir_diagnostic_report
from adapters.fhir.imaging_study import to_fhir_imaging_study
from adapters.fhir.medication_request import to_fhir_medication_request
from adapters.fhir.narrative import with_narrative
from adapters.fhir.observation import to_fhir_ai_observation, to_fhir_doctor_observation
from adapters.fhir.patient import to_fhir_patient
from adapters.fhir.practitioner import to_fhir_practitioner, to_fhir_practitioner_role
from adapters.fhir.provenance import ResultChain, to_fhir_provenance
from adapters.fhir.task import to_fhir_task
from csss_fhir.models import (
    AiPrediction,
    AuditRecord,
    DoctorReview,
    ModelDevice,
    Patient,
    Prescription,
    Report,
    ReportAmendment,
    ResourceVersion,
    Scan,
    Task,
    User,
    WorkflowEvent,
)


def _imaging_study(scan: Scan) -> Any:
    """An ImagingStudy; one that arrived as DICOM names its WADO-RS base (/dicomweb).

    The address is absolute when BASE_URL is set and relative to the server otherwise: the
    rendering is stored as a version, so it must not depend on the request that wrote it.
    """
    if scan.source_format != "dicom":
        return to_fhir_imaging_study(scan)
    from csss_fhir.extensions import services

    configured = services().settings.base_url
    root = configured.rstrip("/").removesuffix("/fhir") if configured else ""
    return to_fhir_imaging_study(scan, dicomweb=f"{root}/dicomweb")


def _report(report: Report) -> Any:
    """The report with its current finding: an approved amendment's, else the doctor's."""
    scan = report.scan
    session = object_session(report)
    amendments = session.scalars(select(ReportAmendment.note).where(
        ReportAmendment.report_id == report.id, ReportAmendment.status != "pending"
    ).order_by(ReportAmendment.created_at)).all() if session is not None else []
    return to_fhir_diagnostic_report(report, prediction=scan.prediction, review=scan.review,
                                     finding=report.finding, amendment_notes=amendments)


def _task(task: Task) -> Any:
    report = task.scan.report
    return to_fhir_task(task, report_id=report.id if report else None)


def _observation(row: AiPrediction | DoctorReview) -> Any:
    if isinstance(row, AiPrediction):
        return to_fhir_ai_observation(row)
    return to_fhir_doctor_observation(row)


def _target_versions(session: Session, event: WorkflowEvent) -> dict[str, int]:
    """{"Type/id": the version each target had when the step was recorded}.

    The versions a step wrote are kept (history.record) before the step's own Provenance
    version, so each target's version is its newest one kept before that (the newest of
    all while the Provenance itself is being recorded).
    """
    own = session.scalar(select(ResourceVersion.pk).where(
        ResourceVersion.resource_type == "Provenance", ResourceVersion.resource_id == event.id,
        ResourceVersion.version_id == 1))
    versions: dict[str, int] = {}
    for target in event.targets:
        resource_type, _, resource_id = target.partition("/")
        query = select(func.max(ResourceVersion.version_id)).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id)
        if own is not None:
            query = query.where(ResourceVersion.pk < own)
        version = session.scalar(query)
        if version is not None:
            versions[target] = version
    return versions


def _provenance(event: WorkflowEvent) -> Any:
    """A step's Provenance, with the model and the verifying doctor behind its result."""
    session = object_session(event)
    versions = _target_versions(session, event) if session is not None else {}
    scan = session.get(Scan, event.scan_id) if session is not None else None
    if scan is None or event.step not in ("verify", "approve"):
        return to_fhir_provenance(event, target_versions=versions)
    prediction, review = scan.prediction, scan.review
    sources = [f"ImagingStudy/{scan.id}"]
    if prediction is not None:
        sources.append(f"Observation/{prediction.id}")
    if review is not None and event.step == "approve":
        sources.append(f"Observation/{review.id}")
    return to_fhir_provenance(event, ResultChain(
        device_id=prediction.device_id if prediction is not None else None,
        verifier_reference=f"Practitioner/{review.doctor_id}" if review is not None else None,
        sources=tuple(sources)), target_versions=versions)


@dataclass(frozen=True)
class ServedType:
    name: str
    models: tuple[type, ...]  # tables whose rows are this type (Observation has two)
    to_fhir: Callable[[Any], Any]
    patient_column: str | None  # column that links a row to its Patient, None: not linked
    # Its rendering reads the row alone, so the JSON that history.record stored for the
    # row's current version is what rendering it now gives: reads and searches serve that
    # (as vread does) instead of validating and dumping the same model again. A type whose
    # rendering reads other rows (a Task names its report) must render: those rows change
    # without giving it a new version. (An ImagingStudy's WADO-RS address takes BASE_URL as
    # it was when the version was stored, as its vread always has.)
    from_row_alone: bool = False

    def render(self, row: Any) -> Any:
        """The row as this FHIR type, with its generated narrative (dom-6)."""
        return with_narrative(self.to_fhir(row))


SERVED: dict[str, ServedType] = {
    t.name: t for t in (
        ServedType("Patient", (Patient,), to_fhir_patient, "id", from_row_alone=True),
        ServedType("Practitioner", (User,), to_fhir_practitioner, None),
        ServedType("PractitionerRole", (User,), to_fhir_practitioner_role, None),
        ServedType("ImagingStudy", (Scan,), _imaging_study, "patient_id",
                   from_row_alone=True),
        ServedType("Task", (Task,), _task, "patient_id"),
        ServedType("Observation", (AiPrediction, DoctorReview), _observation, "patient_id"),
        ServedType("MedicationRequest", (Prescription,), to_fhir_medication_request,
                   "patient_id"),
        ServedType("DiagnosticReport", (Report,), _report, "patient_id"),
        ServedType("Provenance", (WorkflowEvent,), _provenance, "patient_id"),
        ServedType("Device", (ModelDevice,), to_fhir_device, None),
        ServedType("AuditEvent", (AuditRecord,), to_fhir_audit_event, "patient_id"),
    )
}


def type_of(row: Any) -> str:
    """The FHIR type a row is served as (staff users: Practitioner)."""
    for served in SERVED.values():
        if isinstance(row, served.models):
            return served.name
    raise KeyError(type(row).__name__)


def render(row: Any) -> Any:
    return SERVED[type_of(row)].render(row)
