"""The e-mails the workflow sends, and who receives them: their words live here and in
`templates/mail/`, not in the code that decides to send them.

Each `queue_*` function adds its message to the outbox in the caller's transaction; a job
delivers it after that transaction commits.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage

from flask import render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.mail import outbox
from csss_fhir.models import Patient, Report, User
from csss_fhir.reports.times import report_filename
from csss_fhir.settings import Settings

log = logging.getLogger(__name__)


def report_message(settings: Settings, *, recipient: str, patient_name: str,
                   released: datetime, pdf: bytes) -> EmailMessage:
    """The patient's "your report is ready" e-mail with the report's PDF attached, named
    `report-YYYY-MM-DD.pdf` after the day this version was released (the hospital's day)."""
    context = {"name": patient_name, "hospital": settings.hospital_name}
    return outbox.compose(
        sender=settings.mail_from, recipient=recipient,
        subject=f"Your report from {settings.hospital_name} is ready",
        text=render_template("mail/report.txt", **context),
        html=render_template("mail/report.html", **context),
        attachments=((report_filename(released, settings.hospital_timezone),
                      "application/pdf", pdf),),
    )


def patient_address(session: Session, patient: Patient) -> str | None:
    """The patient's e-mail address: the Patient's own, else their user account's."""
    if patient.email is not None:
        return patient.email
    user = session.scalar(select(User).where(User.patient_id == patient.id))
    return user.email if user else None


def queue_report_mail(session: Session, settings: Settings, report: Report,
                      pdf: bytes) -> str | None:
    """Queue the e-mail that sends this version of `report` (its `pdf`) to the patient.

    Returns the outbox row's id, or None when the patient has no e-mail address (the report
    is still released; the patient downloads it after signing in).
    """
    patient = session.get(Patient, report.patient_id)
    recipient = patient_address(session, patient)
    if recipient is None:
        log.warning("report not e-mailed: the patient has no e-mail address",
                    extra={"report_id": report.id})
        return None
    # An amendment's new version is released when the row is updated, not at `issued`.
    message = report_message(settings, recipient=recipient, patient_name=patient.display_name,
                             released=report.updated_at or report.issued, pdf=pdf)
    return outbox.enqueue(session, message, kind="report", report_id=report.id).id


def queue_return_mail(session: Session, settings: Settings, patient: Patient, *,
                      reason: str, uploaded_at: str) -> str | None:
    """Queue the e-mail that asks the patient for a new image of a returned scan.

    Returns the outbox row's id, or None when the patient has no e-mail address (they see
    the request on their page after signing in).
    """
    recipient = patient_address(session, patient)
    if recipient is None:
        log.warning("return not e-mailed: the patient has no e-mail address")
        return None
    context = {"name": patient.display_name, "hospital": settings.hospital_name,
               "reason": reason, "uploaded_at": uploaded_at}
    message = outbox.compose(
        sender=settings.mail_from, recipient=recipient,
        subject=f"{settings.hospital_name}: please send a new chest image",
        text=render_template("mail/returned.txt", **context),
        html=render_template("mail/returned.html", **context),
    )
    return outbox.enqueue(session, message, kind="returned").id
