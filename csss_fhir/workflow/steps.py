"""The clinical steps between the AI's proposal (`classification`) and release: the
doctor's verification ($verify) and the pharmacist's review ($pharmacy-review; the
prescriptions themselves are in `prescriptions`). Each checks the actor and state against
`states.RULES`, makes its change, records provenance and versions, and commits.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from csss_fhir import history
from csss_fhir.models import DoctorReview, PharmacyReview, Task
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import prescriptions
from csss_fhir.workflow.errors import AgreementRequiredError, FindingRequiredError
from csss_fhir.workflow.findings import check_verification, clean_finding
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    find_scan,
    locked_task,
    one_winner,
    record_event,
    require_step,
    required_note,
    transition,
)

log = logging.getLogger(__name__)


def verify(session: Session, actor: Actor, study_id: str, *, note: str, agree: bool | None,
           finding: str | None, provisional_finding: str | None = None,
           blind_read: bool = False, if_match: str | None = None) -> DoctorReview:
    """Record the doctor's finding (the rules on findings are in `findings`).

    `agree` has no default: None (the doctor did not choose) is refused, so that nobody
    accepts the AI's proposal by only typing a note. In blind-read mode a
    `provisional_finding`, made before the AI proposal was shown, is required and kept.

    Raises:
        AgreementRequiredError: `agree` is None.
        FindingRequiredError: the AI said Uncertain, or the doctor disagrees, and no finding
            was given (or the finding is "Uncertain"); or blind read without a provisional one.
    """
    require_step(actor, Step.VERIFY)
    note = required_note(note, "a clinical note is required to verify a scan")
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.VERIFY, if_match)  # a wrong state is 409 first
        if agree is None:
            raise AgreementRequiredError(
                "'agree' is required: say whether you agree with the AI's proposal "
                "(true or false)", field="agree")
        provisional = clean_finding(provisional_finding, field="provisionalFinding")
        if blind_read and provisional is None:
            raise FindingRequiredError(
                "blind read is on: give your 'provisionalFinding', made before you saw the "
                "AI proposal", field="provisionalFinding")
        prediction = scan.prediction
        finding = clean_finding(finding)
        check_verification(prediction, agree=agree, finding=finding)
        review = DoctorReview(
            scan_id=scan.id, patient_id=scan.patient_id, prediction_id=prediction.id,
            doctor_id=actor.user_id, agree=agree and not prediction.uncertain,
            finding=finding or prediction.label, note=note, provisional_finding=provisional,
        )
        session.add(review)
        previous = transition(task, Step.VERIFY)
        session.flush()
        event = record_event(session, actor, task, Step.VERIFY, previous,
                             [f"Observation/{review.id}", f"Task/{task.id}"])
        history.record(session, review, task, event)
    log.info("scan verified", extra={"scan_id": scan.id})
    return review


def pharmacy_review(session: Session, actor: Actor, study_id: str, *, note: str,
                    override_reason: str | None = None, if_match: str | None = None) -> Task:
    """Complete the pharmacist's review of a DOCTOR_VERIFIED scan; the admin approves next.

    Raises:
        OverrideRequiredError: a prescription has a formulary warning and no
            `override_reason` was given (prescriptions.accept_warnings).
    """
    require_step(actor, Step.PHARMACY_REVIEW)
    note = required_note(note, "a note is required to complete the pharmacy review")
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.PHARMACY_REVIEW, if_match)
        overridden = prescriptions.accept_warnings(session, scan.id, override_reason)
        review = PharmacyReview(scan_id=scan.id, pharmacist_id=actor.user_id, note=note,
                                override_reason=override_reason.strip() if overridden else None)
        session.add(review)
        previous = transition(task, Step.PHARMACY_REVIEW)
        session.flush()
        event = record_event(session, actor, task, Step.PHARMACY_REVIEW, previous,
                             [f"Task/{task.id}"] +
                             [f"MedicationRequest/{p.id}" for p in overridden])
        history.record(session, *overridden, task, event)
    log.info("pharmacy review completed", extra={"scan_id": scan.id})
    return task

