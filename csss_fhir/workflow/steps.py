"""The clinical steps between upload and release: the AI's proposal ($classify), the
doctor's verification ($verify), and the pharmacist's prescriptions and review
($pharmacy-review). Each checks the actor and state against `states.RULES`, makes its
change, records provenance and versions, and commits.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from adapters.fhir.medication_request import PrescriptionData
from csss_fhir import history
from csss_fhir.classifier import device_for
from csss_fhir.errors import InvalidInputError, ResourceValidationError
from csss_fhir.extensions import Services
from csss_fhir.models import AiPrediction, DoctorReview, PharmacyReview, Prescription, Scan, Task
from csss_fhir.models.base import utcnow
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import ingest
from csss_fhir.workflow.findings import check_verification, clean_finding
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    check_state,
    find_scan,
    locked_task,
    one_winner,
    record_event,
    require_step,
    required_note,
    transition,
)

log = logging.getLogger(__name__)

PRESCRIPTION_FIELD_LIMIT = 200  # characters of medication, dose, route, frequency, duration


def classify(session: Session, svc: Services, actor: Actor, study_id: str,
             *, if_match: str | None = None) -> AiPrediction:
    """Run the classifier on a PENDING_AI scan; the result is a preliminary proposal."""
    require_step(actor, Step.CLASSIFY)
    scan = find_scan(session, study_id)
    check_state(scan.task, Step.CLASSIFY)  # fail fast before spending time on inference
    classifier = svc.classifier.get()
    image = ingest.classifier_input(svc.store.get(scan.image.sha256), scan.source_format,
                                    svc.settings)
    prediction = classifier.predict(image, threshold=svc.settings.confidence_threshold)
    session.rollback()  # end the read transaction; the write below starts under a lock

    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.CLASSIFY, if_match)
        device = device_for(session, classifier.metadata)
        new_device = device in session.new
        session.flush()
        row = AiPrediction(
            scan_id=scan.id, patient_id=scan.patient_id, device_id=device.id,
            requested_by_id=actor.user_id, label=prediction.label, top_class=prediction.top_class,
            confidence=float(prediction.confidence),
            probabilities={k: float(v) for k, v in prediction.probabilities.items()},
            threshold=float(prediction.threshold), uncertain=bool(prediction.uncertain),
        )
        session.add(row)
        previous = transition(task, Step.CLASSIFY)
        session.flush()
        event = record_event(session, actor, task, Step.CLASSIFY, previous,
                             [f"Observation/{row.id}", f"Task/{task.id}"], device_id=device.id)
        history.record(session, *([device] if new_device else []), row, task, event)
    log.info("scan classified", extra={"scan_id": scan.id})
    return row


def verify(session: Session, actor: Actor, study_id: str, *, note: str, agree: bool,
           finding: str | None, if_match: str | None = None) -> DoctorReview:
    """Record the doctor's finding (the rules on findings are in `findings`).

    Raises:
        FindingRequiredError: the AI said Uncertain, or the doctor disagrees, and no finding
            was given (or the finding is "Uncertain").
    """
    require_step(actor, Step.VERIFY)
    note = required_note(note, "a clinical note is required to verify a scan")
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.VERIFY, if_match)
        prediction = scan.prediction
        finding = clean_finding(finding)
        check_verification(prediction, agree=agree, finding=finding)
        review = DoctorReview(
            scan_id=scan.id, patient_id=scan.patient_id, prediction_id=prediction.id,
            doctor_id=actor.user_id, agree=agree and not prediction.uncertain,
            finding=finding or prediction.label, note=note,
        )
        session.add(review)
        previous = transition(task, Step.VERIFY)
        session.flush()
        event = record_event(session, actor, task, Step.VERIFY, previous,
                             [f"Observation/{review.id}", f"Task/{task.id}"])
        history.record(session, review, task, event)
    log.info("scan verified", extra={"scan_id": scan.id})
    return review


def prescribe(session: Session, actor: Actor, data: PrescriptionData) -> Prescription:
    """Add a prescription to a DOCTOR_VERIFIED scan (the state does not change)."""
    require_step(actor, Step.PRESCRIBE)
    scan = _prescribed_scan(session, data)
    with one_winner(session):
        task = locked_task(session, scan, Step.PRESCRIBE, None)
        row = Prescription(
            scan_id=scan.id, patient_id=scan.patient_id, pharmacist_id=actor.user_id,
            medication=data.medication, medication_code=data.medication_code, dose=data.dose,
            route=data.route, frequency=data.frequency, duration=data.duration,
            dosage_text=data.dosage_text, note=data.note, status=data.status,
            intent=data.intent, authored_on=data.authored_on or utcnow(),
            resource_json=data.resource_json,
        )
        session.add(row)
        session.flush()
        event = record_event(session, actor, task, Step.PRESCRIBE, task.state,
                             [f"MedicationRequest/{row.id}"])
        history.record(session, row, event)
    log.info("prescription added", extra={"scan_id": scan.id, "prescription_id": row.id})
    return row


def _prescribed_scan(session: Session, data: PrescriptionData) -> Scan:
    """The scan a prescription refers to, once its subject and field lengths are checked."""
    scan = session.get(Scan, data.scan_id)
    if scan is None:
        raise ResourceValidationError(
            f"supportingInformation names ImagingStudy/{data.scan_id}, which does not exist")
    if scan.patient_id != data.patient_id:
        raise ResourceValidationError(
            "MedicationRequest.subject is not the patient of the referenced ImagingStudy")
    for name, value in (("medication", data.medication), ("dose", data.dose),
                        ("route", data.route), ("frequency", data.frequency),
                        ("duration", data.duration)):
        if value is not None and len(value) > PRESCRIPTION_FIELD_LIMIT:
            raise InvalidInputError(
                f"{name} is longer than {PRESCRIPTION_FIELD_LIMIT} characters")
    return scan


def pharmacy_review(session: Session, actor: Actor, study_id: str, *, note: str,
                    if_match: str | None = None) -> Task:
    """Complete the pharmacist's review of a DOCTOR_VERIFIED scan; the admin approves next."""
    require_step(actor, Step.PHARMACY_REVIEW)
    note = required_note(note, "a note is required to complete the pharmacy review")
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.PHARMACY_REVIEW, if_match)
        review = PharmacyReview(scan_id=scan.id, pharmacist_id=actor.user_id, note=note)
        session.add(review)
        previous = transition(task, Step.PHARMACY_REVIEW)
        session.flush()
        event = record_event(session, actor, task, Step.PHARMACY_REVIEW, previous,
                             [f"Task/{task.id}"])
        history.record(session, task, event)
    log.info("pharmacy review completed", extra={"scan_id": scan.id})
    return task

