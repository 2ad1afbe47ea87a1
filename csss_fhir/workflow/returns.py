"""Steps that undo: the doctor returns a scan to the patient for a new image
($return-to-patient), and the pharmacist or administrator sends a scan back to the doctor
($send-back). Both need a reason, lock the Task like every step, and record a Provenance.

A send-back keeps everything made so far: the earlier verification stays readable but is
superseded (its Observation becomes `cancelled`, with the reason), prescriptions stay for the
pharmacist to review again, and the scan waits for a new verification.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import history
from csss_fhir.errors import InvalidInputError
from csss_fhir.extensions import Services
from csss_fhir.mail import messages, outbox
from csss_fhir.models import DoctorReview, Task
from csss_fhir.security.actor import Actor
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    find_scan,
    locked_task,
    one_winner,
    record_event,
    require_step,
    transition,
)

log = logging.getLogger(__name__)

REASON_LIMIT = 1000  # characters


def required_reason(reason: str | None, step: Step) -> str:
    """The reason without surrounding blanks.

    Raises:
        InvalidInputError: it is empty or longer than REASON_LIMIT characters.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError(
            f"'reason' is required to {step.value.replace('-', ' ')}: say what is wrong and "
            "what is needed", field="reason")
    if len(reason) > REASON_LIMIT:
        raise InvalidInputError(
            f"the reason is {len(reason)} characters long; it must be at most {REASON_LIMIT}",
            field="reason")
    return reason


def return_to_patient(session: Session, svc: Services, actor: Actor, study_id: str, *,
                      reason: str | None, if_match: str | None = None) -> Task:
    """End a scan the doctor cannot use and ask the patient for a new image (e-mailed)."""
    require_step(actor, Step.RETURN_TO_PATIENT)
    reason = required_reason(reason, Step.RETURN_TO_PATIENT)
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.RETURN_TO_PATIENT, if_match)
        previous = transition(task, Step.RETURN_TO_PATIENT)
        task.status_reason = reason
        session.flush()
        event = record_event(session, actor, task, Step.RETURN_TO_PATIENT, previous,
                             [f"Task/{task.id}"], reason=reason)
        history.record(session, task, event)
        mail_id = messages.queue_return_mail(
            session, svc.settings, scan.patient, reason=reason,
            uploaded_at=scan.created_at.strftime("%d %b %Y"))
    log.info("scan returned to the patient", extra={"scan_id": scan.id})
    if mail_id is not None:
        outbox.deliver(session, svc.mail, [mail_id])
    return task


def send_back(session: Session, actor: Actor, study_id: str, *, reason: str | None,
              if_match: str | None = None) -> Task:
    """Send a verified scan back to the doctor; the current verification is superseded."""
    require_step(actor, Step.SEND_BACK)
    reason = required_reason(reason, Step.SEND_BACK)
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.SEND_BACK, if_match)
        superseded = session.scalars(select(DoctorReview).where(
            DoctorReview.scan_id == scan.id, DoctorReview.status != "cancelled")).all()
        for review in superseded:
            review.status = "cancelled"
            review.superseded_reason = f"Sent back to the doctor by the {actor.role}: {reason}"
        previous = transition(task, Step.SEND_BACK)
        session.flush()
        event = record_event(session, actor, task, Step.SEND_BACK, previous,
                             [*(f"Observation/{r.id}" for r in superseded), f"Task/{task.id}"],
                             reason=reason)
        history.record(session, *superseded, task, event)
    log.info("scan sent back to the doctor", extra={"scan_id": scan.id})
    return task


PRIORITIES = ("routine", "urgent")


def prioritize(session: Session, actor: Actor, study_id: str, *, priority: str | None,
               if_match: str | None = None) -> Task:
    """Mark a scan waiting for the doctor urgent or routine (the state does not change)."""
    require_step(actor, Step.PRIORITIZE)
    if priority not in PRIORITIES:
        raise InvalidInputError(
            f"'priority' is {priority!r}; expected one of {', '.join(PRIORITIES)}",
            field="priority")
    scan = find_scan(session, study_id)
    with one_winner(session):
        task = locked_task(session, scan, Step.PRIORITIZE, if_match)
        task.priority = priority
        session.flush()
        event = record_event(session, actor, task, Step.PRIORITIZE, task.state,
                             [f"Task/{task.id}"], reason=f"priority set to {priority}")
        history.record(session, task, event)
    log.info("scan priority set", extra={"scan_id": scan.id})
    return task
