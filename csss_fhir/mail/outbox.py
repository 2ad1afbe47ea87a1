"""The outbox: messages are written in the same transaction as the decision to send them,
then delivered after commit. A message keeps its Message-ID, so a retry is the same e-mail.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.mail.backends import DeliveryError, FileBackend, SmtpBackend
from csss_fhir.models import MailMessage, new_id, utcnow

log = logging.getLogger(__name__)


def compose(*, sender: str, recipient: str, subject: str, text: str, html: str | None = None,
            attachments: tuple[tuple[str, str, bytes], ...] = ()) -> EmailMessage:
    """Build a message; attachments are (filename, mime type, bytes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def enqueue(session: Session, message: EmailMessage, *, kind: str,
            report_id: str | None = None) -> MailMessage:
    """Add a message to the outbox in the caller's transaction."""
    row_id = new_id()
    domain = message["From"].addresses[0].domain or "localhost"
    message["Message-ID"] = make_msgid(idstring=row_id, domain=domain)
    row = MailMessage(id=row_id, kind=kind, report_id=report_id,
                      message_id=message["Message-ID"],
                      recipient=str(message["To"]), raw=message.as_bytes())
    session.add(row)
    return row


def deliver(session: Session, backend: FileBackend | SmtpBackend, row_ids: list[str]) -> None:
    """Try to deliver these outbox rows now and commit their outcome.

    Failures are recorded on the row, never raised: the decision that queued the mail is
    already committed and stands.
    """
    for row_id in row_ids:
        row = session.scalar(select(MailMessage).where(MailMessage.id == row_id,
                                                       MailMessage.status == "pending"))
        if row is None:
            continue
        row.attempts += 1
        try:
            backend.send(row.message_id, row.raw)
        except DeliveryError as err:
            row.last_error = str(err)[:500]
            if err.permanent:
                row.status = "failed"
            log.warning("mail delivery failed", extra={"mail_id": row.id,
                                                       "permanent": err.permanent})
        else:
            row.status = "sent"
            row.sent_at = utcnow()
            row.last_error = None
            log.info("mail sent", extra={"mail_id": row.id})
        session.commit()
