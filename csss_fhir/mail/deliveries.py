"""What admins see of the outbox, and what they may do: delivery state per report, resend.

The web UI and the CLI call these; nothing here decides to send a report (the workflow
does), it only reports on and retries what the outbox holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import jobs
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.mail import messages, outbox
from csss_fhir.mail.outbox import FAILED, PENDING, SENDING, SENT, UNCERTAIN
from csss_fhir.models import MailMessage, Patient, Report, utcnow
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError


@dataclass(frozen=True)
class Delivery:
    """One e-mail's state, safe to show an admin (no body, no codes)."""

    mail_id: str
    kind: str
    report_id: str | None
    recipient: str
    status: str  # pending | sending | sent | failed | uncertain
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None


def _delivery(row: MailMessage) -> Delivery:
    return Delivery(mail_id=row.id, kind=row.kind, report_id=row.report_id,
                    recipient=row.recipient, status=row.status, attempts=row.attempts,
                    created_at=row.created_at, sent_at=row.sent_at,
                    next_attempt_at=row.next_attempt_at, last_error=row.last_error)


def _require_admin(actor: Actor | None) -> None:
    if actor is not None and actor.role != "admin":
        raise AccessDeniedError("only administrators see and resend e-mail deliveries")


def report_deliveries(session: Session, report_id: str, *,
                      actor: Actor | None = None) -> list[Delivery]:
    """Every e-mail of one report, oldest first (`actor` None: the CLI, trusted)."""
    _require_admin(actor)
    rows = session.scalars(select(MailMessage).where(MailMessage.report_id == report_id)
                           .order_by(MailMessage.created_at)).all()
    return [_delivery(row) for row in rows]


def recent_deliveries(session: Session, *, status: str | None = None, limit: int = 50,
                      actor: Actor | None = None) -> list[Delivery]:
    """Report e-mails, newest first, optionally only those in one state."""
    _require_admin(actor)
    query = select(MailMessage).where(MailMessage.kind == "report")
    if status:
        query = query.where(MailMessage.status == status)
    rows = session.scalars(query.order_by(MailMessage.created_at.desc()).limit(limit)).all()
    return [_delivery(row) for row in rows]


def resend(session: Session, mail_id: str, *, svc: Services, actor: Actor | None = None
           ) -> Delivery:
    """Send a report e-mail again, and commit; a job delivers it after the commit.

    A message that never arrived (failed, or still waiting), or may have (uncertain: the
    administrator decides it did not), is retried as the same e-mail, with the same
    Message-ID, due now. One that was sent becomes a new message with its own Message-ID,
    carrying the report's CURRENT PDF (after an amendment, not the superseded one it first
    carried): the patient asked for it again, and it is a second e-mail, not a duplicate.

    Raises:
        ResourceNotFoundError: no such message. InvalidInputError: a one-time-code e-mail
            (those are never resent; the user asks for a new code) or one being sent now.
    """
    _require_admin(actor)
    row = session.get(MailMessage, mail_id)
    if row is None:
        raise ResourceNotFoundError(f"no e-mail {mail_id} in the outbox")
    if row.kind != "report":
        raise InvalidInputError("only report e-mails are resent; ask for a new sign-in code")
    if row.status == SENDING:
        raise InvalidInputError("this e-mail is being sent right now")
    if row.status in (FAILED, PENDING, UNCERTAIN):
        row.status, row.next_attempt_at, row.claimed_until = PENDING, utcnow(), None
        row.data_started_at = None
        jobs.enqueue(session, jobs.SEND_MAIL, row.id)
        session.commit()
        return _delivery(row)
    assert row.status == SENT
    message = BytesParser(policy=policy.SMTP).parsebytes(row.raw)
    report = session.get(Report, row.report_id) if row.report_id else None
    if report is not None:
        message = messages.report_message(
            svc.settings, recipient=str(message["To"]),
            patient_name=session.get(Patient, report.patient_id).display_name,
            released=report.updated_at or report.issued, pdf=svc.store.get(report.pdf.sha256))
    copy = outbox.enqueue(session, message, kind=row.kind, report_id=row.report_id)
    session.commit()
    return _delivery(copy)
