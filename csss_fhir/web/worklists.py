"""The lists the dashboards show: each one query, oldest first where work waits.

Reads go through security/access.py first, as /fhir's do: a caller who may not read a type
gets AccessDeniedError, and a patient only ever sees their own compartment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from csss_fhir import search
from csss_fhir.models import (
    AiPrediction,
    MailMessage,
    Patient,
    PharmacyReview,
    Prescription,
    Report,
    Scan,
    Task,
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
    state: str
    patient: Patient
    prediction: AiPrediction | None
    report: Report | None

    @property
    def state_words(self) -> str:
        return DESCRIPTIONS.get(self.state, self.state)


def _rows(session: Session, statement: Select) -> list[ScanRow]:
    rows = session.execute(statement.limit(LIMIT)).all()
    return [ScanRow(scan=scan, state=state, patient=patient, prediction=prediction,
                    report=report) for scan, state, patient, prediction, report in rows]


def _base():
    return (select(Scan, Task.state, Patient, AiPrediction, Report)
            .join(Task, Task.scan_id == Scan.id)
            .join(Patient, Patient.id == Scan.patient_id)
            .outerjoin(AiPrediction, AiPrediction.scan_id == Scan.id)
            .outerjoin(Report, Report.scan_id == Scan.id))


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
    """Scans in `states`, oldest first (the longest-waiting on top), filtered by patient
    name or MRN and, optionally, to the AI's Uncertain results."""
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
    order = Task.updated_at.desc() if newest_first else Task.updated_at.asc()
    return _rows(session, statement.order_by(order))


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
    access.require_read(actor, "Task")
    return session.scalar(select(PharmacyReview).where(PharmacyReview.scan_id == study_id))


def report(session: Session, actor: Actor, report_id: str) -> Report:
    access.require_read(actor, "DiagnosticReport")
    return search.find(session, "DiagnosticReport", report_id, access.compartment(actor))


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

