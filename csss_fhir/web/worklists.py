"""The lists the dashboards show: each one query; where work waits, urgent first, then the
longest-waiting.

Reads go through security/access.py first, as /fhir's do: a caller who may not read a type
gets AccessDeniedError, and a patient only ever sees their own compartment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from csss_fhir import search
from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.models import (
    AiPrediction,
    AuditRecord,
    DoctorReview,
    MailMessage,
    Patient,
    PharmacyReview,
    Prescription,
    Report,
    Scan,
    Task,
    User,
    WorkflowEvent,
    utcnow,
)
from csss_fhir.security import access
from csss_fhir.security.actor import Actor
from csss_fhir.workflow.states import DESCRIPTIONS

if TYPE_CHECKING:
    from sqlalchemy import Select

LIMIT = 200


@dataclass(frozen=True)
class ScanRow:
    """One scan as a list shows it."""

    scan: Scan
    task: Task
    patient: Patient
    prediction: AiPrediction | None
    report: Report | None
    review: DoctorReview | None  # the current verification

    @property
    def state(self) -> str:
        return self.task.state

    @property
    def state_words(self) -> str:
        return DESCRIPTIONS.get(self.state, self.state)

    @property
    def waiting_since(self) -> datetime:
        """When the scan reached its state: the wait of whoever works on it next."""
        return self.task.updated_at

    @property
    def age(self) -> int | None:
        """The patient's age in whole years today, None without a birth date."""
        born = self.patient.birth_date
        if born is None:
            return None
        today = date.today()
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _rows(session: Session, statement: Select) -> list[ScanRow]:
    rows = session.execute(statement.limit(LIMIT)).all()
    return [ScanRow(scan=scan, task=task, patient=patient, prediction=prediction,
                    report=report, review=review)
            for scan, task, patient, prediction, report, review in rows]


def _base():
    return (select(Scan, Task, Patient, AiPrediction, Report, DoctorReview)
            .join(Task, Task.scan_id == Scan.id)
            .join(Patient, Patient.id == Scan.patient_id)
            .outerjoin(AiPrediction, AiPrediction.scan_id == Scan.id)
            .outerjoin(Report, Report.scan_id == Scan.id)
            .outerjoin(DoctorReview, and_(DoctorReview.scan_id == Scan.id,
                                          DoctorReview.status != "cancelled")))


def own_scans(session: Session, actor: Actor) -> list[ScanRow]:
    """A patient's own scans, newest first (never the AI's result: callers show state only)."""
    access.require_read(actor, "ImagingStudy")
    patient_id = access.compartment(actor)
    statement = _base().order_by(Scan.created_at.desc())
    if patient_id is not None:
        statement = statement.where(Scan.patient_id == patient_id)
    return _rows(session, statement)


def staff_queue(session: Session, actor: Actor, states: list[str], *, text: str = "",
                uncertain_only: bool = False, newest_first: bool = False) -> list[ScanRow]:
    """Scans in `states`, urgent first, then oldest first (the longest-waiting on top),
    filtered by patient name or MRN and, optionally, to the AI's Uncertain results."""
    access.require_read(actor, "ImagingStudy")
    access.require_read(actor, "Patient")
    statement = _base().where(Task.state.in_(states))
    if text.strip():
        pattern = f"%{text.strip().lower()}%"
        statement = statement.where(or_(
            func.lower(Patient.given_names + " " + Patient.family_name).like(pattern),
            func.lower(func.coalesce(Patient.mrn, "")).like(pattern)))
    if uncertain_only:
        access.require_read(actor, "Observation")
        statement = statement.where(AiPrediction.uncertain.is_(True))
    if newest_first:
        return _rows(session, statement.order_by(Task.updated_at.desc()))
    urgent_first = case((Task.priority == "urgent", 0), else_=1)
    return _rows(session, statement.order_by(urgent_first, Task.updated_at.asc()))


def patient_scans(session: Session, actor: Actor, scan: Scan) -> list[ScanRow]:
    """The patient's other scans, newest first: the earlier images a reader compares with
    (and any later one, so that an older scan's page leads to the newest)."""
    access.require_read(actor, "ImagingStudy")
    statement = (_base().where(Scan.patient_id == scan.patient_id, Scan.id != scan.id)
                 .order_by(Scan.created_at.desc()))
    patient_id = access.compartment(actor)
    if patient_id is not None:
        statement = statement.where(Scan.patient_id == patient_id)
    return _rows(session, statement)


def scan(session: Session, actor: Actor, study_id: str) -> Scan:
    """One scan the actor may read (a patient: only their own).

    Raises:
        AccessDeniedError; ResourceNotFoundError.
    """
    access.require_read(actor, "ImagingStudy")
    return search.find(session, "ImagingStudy", study_id, access.compartment(actor))


def prescriptions(session: Session, actor: Actor, study_id: str) -> list[Prescription]:
    access.require_read(actor, "MedicationRequest")
    return list(session.scalars(select(Prescription).where(Prescription.scan_id == study_id)
                                .order_by(Prescription.authored_on)))


def pharmacy_review(session: Session, actor: Actor, study_id: str) -> PharmacyReview | None:
    """The latest pharmacy review (a scan sent back is reviewed again)."""
    access.require_read(actor, "Task")
    return session.scalar(select(PharmacyReview).where(PharmacyReview.scan_id == study_id)
                          .order_by(PharmacyReview.created_at.desc()).limit(1))


def superseded_reviews(session: Session, actor: Actor, study_id: str) -> list[DoctorReview]:
    """Earlier verifications of a scan that was sent back, oldest first."""
    access.require_read(actor, "Observation")
    return list(session.scalars(select(DoctorReview).where(
        DoctorReview.scan_id == study_id, DoctorReview.status == "cancelled")
        .order_by(DoctorReview.created_at)))


def returns(session: Session, actor: Actor, study_id: str) -> list[WorkflowEvent]:
    """The scan's returns and send-backs, with their reasons, oldest first."""
    access.require_read(actor, "Provenance")
    return list(session.scalars(select(WorkflowEvent).where(
        WorkflowEvent.scan_id == study_id,
        WorkflowEvent.step.in_(("return-to-patient", "send-back")))
        .order_by(WorkflowEvent.created_at)))


def now() -> datetime:
    """The time waits are measured to (UTC, like the stored times)."""
    return utcnow()


def report(session: Session, actor: Actor, report_id: str) -> Report:
    access.require_read(actor, "DiagnosticReport")
    return search.find(session, "DiagnosticReport", report_id, access.compartment(actor))


def released_report(session: Session, actor: Actor, study_id: str) -> Report:
    """The released report of a scan the actor may read.

    Raises:
        AccessDeniedError; ResourceNotFoundError: no such scan, or it has no report yet.
    """
    found = scan(session, actor, study_id)
    if found.report is None:
        raise ResourceNotFoundError(f"ImagingStudy/{study_id} has no released report")
    return report(session, actor, found.report.id)


def outbox_backlog(session: Session) -> dict[str, int]:
    """Outbox rows per status (pending, sending, failed, sent), and `stuck`: rows in
    `sending` whose sender's claim has lapsed (it died mid-send; the worker retries them)."""
    rows = session.execute(select(MailMessage.status, func.count())
                           .group_by(MailMessage.status)).all()
    counts = {status: count for status, count in rows}
    counts["stuck"] = session.scalar(
        select(func.count()).where(MailMessage.status == "sending",
                                   MailMessage.claimed_until < utcnow())) or 0
    return counts



def audit_names(session: Session, records: Sequence[AuditRecord]) -> dict[str, str]:
    """Names for the audit log's people: "Practitioner/<id>" and "Patient/<id>" (agents)
    and bare patient ids (subjects) -> the user's or patient's name. The caller has passed
    access.require_read(AUDIT) already (audit.recent_records checks it)."""
    staff = {r.agent_reference.removeprefix("Practitioner/") for r in records
             if (r.agent_reference or "").startswith("Practitioner/")}
    patients = {r.patient_id for r in records if r.patient_id} | {
        r.agent_reference.removeprefix("Patient/") for r in records
        if (r.agent_reference or "").startswith("Patient/")}
    names = {f"Practitioner/{user_id}": name for user_id, name in session.execute(
        select(User.id, User.name).where(User.id.in_(staff)))} if staff else {}
    for patient in (session.scalars(select(Patient).where(Patient.id.in_(patients)))
                    if patients else []):
        name = patient.display_name or "Unnamed patient"
        names[patient.id] = names[f"Patient/{patient.id}"] = name
    return names
