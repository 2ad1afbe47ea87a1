"""A released report as its patient reads it: the doctor's finding first, then the AI's.

Only what the released report's PDF already tells the patient is gathered here (the finding,
the notes, the medicines, the AI proposal as reviewed), read through the DiagnosticReport the
patient may see; a scan whose report is not released has nothing to read. Prescriptions are
listed only while active: a cancelled or replaced one is never shown as something to take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import search
from csss_fhir.models import Prescription, Report, ReportAmendment
from csss_fhir.reports import plain_language
from csss_fhir.reports.plain_language import Explanation
from csss_fhir.security import access
from csss_fhir.security.actor import Actor
from ml.infer import NOT_ASSESSABLE, UNCERTAIN

ACTIVE = "active"


@dataclass(frozen=True)
class Medicine:
    name: str
    dose: str | None
    route: str | None
    frequency: str | None
    duration: str | None
    note: str | None
    status: str


@dataclass(frozen=True)
class PatientReport:
    """One released report, in the order the patient's page shows it."""

    report_id: str
    released: datetime  # this version's release (an amendment's, after a correction)
    first_released: datetime
    version: int
    status: str  # final | amended | corrected
    finding: str  # the finding that stands
    explanation: Explanation
    corrected: bool  # the finding was corrected after the first release
    doctor_name: str
    verified_at: datetime
    doctor_note: str
    agree: bool
    amendment_notes: tuple[str, ...]
    medicines: tuple[Medicine, ...]
    ai_label: str
    ai_confidence: float
    ai_uncertain: bool
    ai_explanation: Explanation | None  # for "Not assessable" and "Uncertain"
    pdf_sha256: str  # the current version's PDF in the blob store

    @property
    def ai_words(self) -> str:
        return plain_language.words(self.ai_label)


def released_report(session: Session, actor: Actor, report_id: str) -> PatientReport:
    """The report `report_id`, if the actor may read it (a patient: only their own).

    Raises:
        AccessDeniedError: the actor may not read reports. ResourceNotFoundError: no such
        report in the actor's compartment.
    """
    access.require_read(actor, "DiagnosticReport")
    report: Report = search.find(session, "DiagnosticReport", report_id,
                                 access.compartment(actor))
    scan = report.scan
    review, prediction = scan.review, scan.prediction
    amendments = session.scalars(select(ReportAmendment).where(
        ReportAmendment.report_id == report.id).order_by(ReportAmendment.created_at)).all()
    corrections = [a.finding for a in amendments if a.finding]
    finding = corrections[-1] if corrections else review.finding
    ai_explanation = None
    if prediction.label in (NOT_ASSESSABLE, UNCERTAIN):
        ai_explanation = plain_language.explain(prediction.label)
    return PatientReport(
        report_id=report.id, released=amendments[-1].created_at if amendments else report.issued,
        first_released=report.issued, version=report.version_id, status=report.status,
        finding=finding, explanation=plain_language.explain(finding),
        corrected=bool(corrections), doctor_name=review.doctor.name,
        verified_at=review.created_at, doctor_note=review.note, agree=review.agree,
        amendment_notes=tuple(a.note for a in amendments),
        medicines=tuple(_medicine(p) for p in _prescriptions(session, scan.id)),
        ai_label=prediction.label, ai_confidence=prediction.confidence,
        ai_uncertain=prediction.uncertain, ai_explanation=ai_explanation,
        pdf_sha256=report.pdf.sha256,
    )


def active_medicines(session: Session, actor: Actor) -> list[Medicine]:
    """The actor's active prescriptions from their released reports, oldest first."""
    access.require_read(actor, "DiagnosticReport")
    patient_id = access.compartment(actor)
    if patient_id is None:
        return []  # staff have no medicines of their own
    statement = (select(Prescription).join(Report, Report.scan_id == Prescription.scan_id)
                 .where(Prescription.patient_id == patient_id, Prescription.status == ACTIVE)
                 .order_by(Prescription.authored_on))
    return [_medicine(p) for p in session.scalars(statement)]


def _prescriptions(session: Session, scan_id: str) -> list[Prescription]:
    return list(session.scalars(select(Prescription).where(
        Prescription.scan_id == scan_id, Prescription.status == ACTIVE)
        .order_by(Prescription.authored_on)))


def _medicine(prescription: Prescription) -> Medicine:
    return Medicine(prescription.medication, prescription.dose, prescription.route,
                    prescription.frequency, prescription.duration, prescription.note,
                    prescription.status)
