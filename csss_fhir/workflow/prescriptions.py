"""The pharmacist's prescriptions: write, correct and cancel them while the pharmacy review
is open, and check each dose against the formulary.

Every change is a new version of the MedicationRequest (vread keeps the earlier ones); a
cancelled prescription (`cancelled`, `entered-in-error`) stays in the record and is never
shown or printed as active. A dose above the formulary's maximum for the patient's age is a
warning stored with the prescription; `pharmacy_review` (steps.py) completes past warnings
only with an override reason (`accept_warnings`), which the PDF prints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.fhir.medication_request import CREATE_STATUSES, PrescriptionData
from csss_fhir import history, limits
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError, ResourceValidationError
from csss_fhir.models import Prescription, Scan, utcnow
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import formulary
from csss_fhir.workflow.errors import OverrideRequiredError, PrescriptionClosedError
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    check_version,
    locked_task,
    one_winner,
    record_event,
    require_step,
)

log = logging.getLogger(__name__)

DOSAGE_JSON_LIMIT = 8000  # characters of dosageInstruction + dispenseRequest as JSON
OVERRIDE_LIMIT = 2000  # characters of an override reason
CANCELLED = ("cancelled", "entered-in-error")


def prescribe(session: Session, actor: Actor, data: PrescriptionData) -> Prescription:
    """Add a prescription to a DOCTOR_VERIFIED scan (the state does not change).

    Raises:
        StepNotAllowedError: not a pharmacist. WrongStateError: the scan is not waiting for
        the pharmacist. ResourceValidationError: the subject or study do not fit, or the
        new prescription is already cancelled. InvalidInputError: a field is too long.
    """
    require_step(actor, Step.PRESCRIBE)
    scan = _prescribed_scan(session, data)
    if data.status not in CREATE_STATUSES:
        raise ResourceValidationError(
            f"MedicationRequest.status is {data.status!r}; a new prescription is "
            f"{' or '.join(CREATE_STATUSES)}", expression="MedicationRequest.status")
    with one_winner(session):
        task = locked_task(session, scan, Step.PRESCRIBE, None)
        row = Prescription(scan_id=scan.id, patient_id=scan.patient_id,
                           pharmacist_id=actor.user_id)
        _apply(row, data, scan)
        session.add(row)
        session.flush()
        event = record_event(session, actor, task, Step.PRESCRIBE, task.state,
                             [f"MedicationRequest/{row.id}"])
        history.record(session, row, event)
    log.info("prescription added", extra={"scan_id": scan.id, "prescription_id": row.id})
    return row


def update(session: Session, actor: Actor, prescription_id: str, data: PrescriptionData, *,
           if_match: str | None = None) -> Prescription:
    """Replace a prescription with a corrected version, or cancel it (`data.status`
    cancelled or entered-in-error): FHIR update (PUT).

    Raises:
        ResourceNotFoundError: no such prescription. StepNotAllowedError: not a pharmacist.
        WrongStateError: the pharmacy review is complete. PrescriptionClosedError: the
        prescription is cancelled already. PreconditionFailedError: `If-Match` names another
        version. ResourceValidationError: the subject or the study differ from the stored.
    """
    require_step(actor, Step.CHANGE_PRESCRIPTION)
    row = _find(session, prescription_id)
    if (data.patient_id, data.scan_id) != (row.patient_id, row.scan_id):
        raise ResourceValidationError(
            f"MedicationRequest/{row.id} belongs to Patient/{row.patient_id} and "
            f"ImagingStudy/{row.scan_id}; a correction cannot move it to another patient or "
            "study (write a new prescription there)")
    scan = _prescribed_scan(session, data)
    with one_winner(session):
        task = locked_task(session, scan, Step.CHANGE_PRESCRIPTION, None)
        check_version(if_match, reference=f"MedicationRequest/{row.id}",
                      current=row.version_id)
        _require_open(row)
        _apply(row, data, scan)
        row.updated_at = utcnow()
        session.flush()
        event = record_event(session, actor, task, Step.CHANGE_PRESCRIPTION, task.state,
                             [f"MedicationRequest/{row.id}"])
        history.record(session, row, event)
    log.info("prescription changed", extra={"prescription_id": row.id, "status": row.status})
    return row


def cancel(session: Session, actor: Actor, prescription_id: str, *, status: str,
           reason: str | None, if_match: str | None = None) -> Prescription:
    """Cancel a prescription (`cancelled`, or `entered-in-error` for a mistake): the web
    form's shortcut for an update that changes only the status.

    Raises:
        InvalidInputError: another status. And what `update` raises.
    """
    if status not in CANCELLED:
        raise InvalidInputError(f"cancel with status cancelled or entered-in-error, "
                                f"not {status!r}")
    row = _find(session, prescription_id)
    return update(session, actor, prescription_id, PrescriptionData(
        patient_id=row.patient_id, scan_id=row.scan_id, medication=row.medication,
        medication_code=row.medication_code, dose=row.dose, route=row.route,
        frequency=row.frequency, duration=row.duration, dosage_text=row.dosage_text,
        note=row.note, dosage_instruction=row.dosage_instruction,
        dispense_request=row.dispense_request, status=status,
        status_reason=(reason or "").strip()[:500] or None), if_match=if_match)


def active(session: Session, scan_id: str) -> Sequence[Prescription]:
    """The scan's prescriptions that are not cancelled, oldest first."""
    return session.scalars(select(Prescription).where(
        Prescription.scan_id == scan_id, Prescription.status.not_in(CANCELLED)
    ).order_by(Prescription.authored_on)).all()


def accept_warnings(session: Session, scan_id: str, override_reason: str | None
                    ) -> list[Prescription]:
    """Record the override on each active prescription with a warning; returns them.

    Call inside the pharmacy review's transaction.

    Raises:
        OverrideRequiredError: a warning stands and no override reason was given; the
            message names each drug and its limit.
    """
    warned = [p for p in active(session, scan_id) if p.warnings]
    if not warned:
        return []
    reason = (override_reason or "").strip()
    if not reason:
        found = "; ".join(w["message"] for p in warned for w in p.warnings)
        raise OverrideRequiredError(
            f"formulary warnings stand: {found}. Correct the dose, cancel the prescription, "
            "or complete the review with an override reason (parameter override-reason)",
            details="override-required")
    if len(reason) > OVERRIDE_LIMIT:
        raise InvalidInputError(f"the override reason is longer than {OVERRIDE_LIMIT} "
                                "characters")
    for prescription in warned:
        prescription.override_reason = reason
        prescription.updated_at = utcnow()
    return warned


def _find(session: Session, prescription_id: str) -> Prescription:
    row = session.get(Prescription, prescription_id)
    if row is None:
        raise ResourceNotFoundError(f"MedicationRequest/{prescription_id} does not exist")
    return row


def _require_open(row: Prescription) -> None:
    if row.status in CANCELLED:
        raise PrescriptionClosedError(
            f"MedicationRequest/{row.id} is {row.status}; it stays so. Write a new "
            "prescription instead", details=row.status)


def _apply(row: Prescription, data: PrescriptionData, scan: Scan) -> None:
    """Copy the request's values onto the row and check the dose against the formulary."""
    # Check first: reading the patient's birth date would autoflush a half-copied row.
    warnings = [w.as_json() for w in dose_warnings(data, scan)] or None
    row.status, row.status_reason = data.status, data.status_reason
    row.medication, row.medication_code = data.medication, data.medication_code
    row.dose, row.route, row.frequency = data.dose, data.route, data.frequency
    row.duration, row.dosage_text, row.note = data.duration, data.dosage_text, data.note
    row.dosage_instruction, row.dispense_request = data.dosage_instruction, \
        data.dispense_request
    row.intent, row.resource_json = data.intent, data.resource_json
    if row.authored_on is None:  # set once, at creation: a correction keeps it
        row.authored_on = data.authored_on or utcnow()
    row.warnings = warnings
    row.override_reason = None  # an override answered the warnings of an earlier version


def dose_warnings(data: PrescriptionData, scan: Scan) -> list[formulary.DoseWarning]:
    """The formulary's warnings on this prescription for this scan's patient (none for a
    drug the formulary does not list, or a dosage without a dose quantity)."""
    book = formulary.shipped()
    drug = book.match(data.medication, (data.medication_code or {}).get("coding", []))
    if drug is None or not data.dosage_instruction:
        return []
    age = formulary.age_in_years(scan.patient.birth_date, utcnow().date())
    return book.check(drug, data.dosage_instruction, age_years=age)


def _prescribed_scan(session: Session, data: PrescriptionData) -> Scan:
    """The scan a prescription refers to, once its subject and field lengths are checked."""
    scan = session.get(Scan, data.scan_id)
    if scan is None:
        raise ResourceValidationError(
            f"supportingInformation names ImagingStudy/{data.scan_id}, which does not exist")
    if scan.patient_id != data.patient_id:
        raise ResourceValidationError(
            "MedicationRequest.subject is not the patient of the referenced ImagingStudy")
    for name, value, limit in (
            ("medication", data.medication, limits.NAME), ("dose", data.dose, limits.SHORT),
            ("route", data.route, limits.SHORT), ("frequency", data.frequency, limits.SHORT),
            ("duration", data.duration, limits.SHORT),
            ("dosage text", data.dosage_text, limits.DOSAGE_TEXT),
            ("note", data.note, limits.NOTE)):
        limits.check_length(name, value, limit)
    structured = json.dumps([data.dosage_instruction, data.dispense_request])
    if len(structured) > DOSAGE_JSON_LIMIT:
        raise InvalidInputError(
            f"dosageInstruction and dispenseRequest take {len(structured)} characters as "
            f"JSON; at most {DOSAGE_JSON_LIMIT} are stored")
    return scan
