"""The outbox: messages are written in the same transaction as the decision to send them,
then delivered by a job (`csss_fhir.jobs`) after commit — never inside a request. A message
keeps its Message-ID, so a retry is the same e-mail.

A row is `pending` (due at `next_attempt_at`), `sending` (claimed by one sender until
`claimed_until`), `sent`, `failed` (permanent refusal, or too many temporary failures) or
`uncertain` (the server may have it: see below).
Claiming is one atomic step — `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, a
conditional `UPDATE ... WHERE status = 'pending'` elsewhere — so of several senders (jobs,
any number of `csss mail worker`s) exactly one gets a row.

When can a second delivery still happen? A sender records `data_started_at` (committed)
just before it hands the body to the server. A failure before that point — refused
connection, refused sender or recipient — is retried automatically, with back-off, and
nothing was delivered. A failure after it — a timeout or dropped connection while the
server reads or answers the DATA — leaves the row `uncertain`: the server may have taken
the message. So does a sender killed after that point (its claim lapses after
CLAIM_SECONDS; the sweep marks the row). An uncertain row is never retried on its own; an
administrator decides (resend: the same message, with the same Message-ID, which the
receiving side can recognise). A second delivery therefore happens only when an
administrator resends an `uncertain` message that had in fact arrived, or resends a `sent`
one (a new copy with a new Message-ID, on purpose).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from csss_fhir import jobs
from csss_fhir.mail.backends import DeliveryError, FileBackend, SmtpBackend
from csss_fhir.models import MailMessage, new_id, utcnow

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
UNCERTAIN = "uncertain"
SCRUBBED = b"(a sign-in code: its text is not kept after sending)\r\n"
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
MAX_ATTEMPTS = 12  # about 7 hours of back-off before a temporary failure becomes permanent
CLAIM_SECONDS = 300  # longer than any SMTP conversation (SMTP_TIMEOUT is per operation)


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
    """Add a message to the outbox in the caller's transaction, due at once; a job sends it
    once that transaction commits.

    The message gets a new Message-ID, built from the row id and the sender's domain, in
    place of any it had: each row is one e-mail, and its retries keep this id.
    """
    row_id = new_id()
    domain = message["From"].addresses[0].domain or "localhost"
    del message["Message-ID"]
    message["Message-ID"] = make_msgid(idstring=row_id, domain=domain)
    row = MailMessage(id=row_id, kind=kind, report_id=report_id,
                      message_id=message["Message-ID"], recipient=str(message["To"]),
                      raw=message.as_bytes(), status=PENDING, next_attempt_at=utcnow())
    session.add(row)
    jobs.enqueue(session, jobs.SEND_MAIL, row_id)
    return row


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after the n-th failed attempt: 30 s, 60 s, 120 s ... at most 1 h."""
    return timedelta(seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1)))


def claimable(now: datetime) -> ColumnElement[bool]:
    """Rows a sender may claim now: pending and due, or claimed by a sender that was lost
    before it reached DATA (nothing left this machine then)."""
    due = or_(MailMessage.next_attempt_at.is_(None), MailMessage.next_attempt_at <= now)
    lapsed = ((MailMessage.status == SENDING) & (MailMessage.claimed_until < now)
              & MailMessage.data_started_at.is_(None))
    return ((MailMessage.status == PENDING) & due) | lapsed


def mark_uncertain(session: Session, *, now: datetime | None = None) -> int:
    """Rows whose sender was lost after it reached DATA become `uncertain` (caller commits);
    returns how many."""
    now = now or utcnow()
    return session.execute(
        update(MailMessage).where(MailMessage.status == SENDING,
                                  MailMessage.claimed_until < now,
                                  MailMessage.data_started_at.is_not(None))
        .values(status=UNCERTAIN, claimed_until=None, next_attempt_at=None,
                last_error="the sender was lost after the message was handed to the server")
        .execution_options(synchronize_session=False)
    ).rowcount


def claim(session: Session, row_id: str | None = None, *,
          now: datetime | None = None) -> MailMessage | None:
    """Claim one due message (this one, or the oldest due) for this sender, and commit.

    Returns None when there is none, or another sender holds it.
    """
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        query = select(MailMessage.id).where(claimable(now))
        if row_id is not None:
            query = query.where(MailMessage.id == row_id)
        row_id = session.scalar(query.order_by(MailMessage.created_at).limit(1)
                                .with_for_update(skip_locked=True))
    elif row_id is None:
        row_id = session.scalar(select(MailMessage.id).where(claimable(now))
                                .order_by(MailMessage.created_at).limit(1))
    if row_id is None:
        session.rollback()
        return None
    claimed = session.execute(
        update(MailMessage).where(MailMessage.id == row_id, claimable(now))
        .values(status=SENDING, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if claimed != 1:
        return None  # another sender was faster
    row = session.get(MailMessage, row_id)
    session.refresh(row)
    return row


def _send(session: Session, backend: FileBackend | SmtpBackend, row: MailMessage,
          now: datetime | None = None) -> str:
    """Send a claimed row and commit its outcome; failures are recorded, never raised."""
    row.attempts += 1

    def before_data() -> None:
        row.data_started_at = utcnow()
        session.commit()

    try:
        backend.send(row.message_id, row.raw, before_data=before_data)
    except DeliveryError as err:
        row.last_error = str(err)[:500]
        row.claimed_until = None
        if err.uncertain:
            row.status = UNCERTAIN  # the server may have it: no blind retry
            row.next_attempt_at = None
        elif err.permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = FAILED
            row.next_attempt_at = None
        else:
            row.status = PENDING
            row.data_started_at = None
            row.next_attempt_at = (now or utcnow()) + retry_delay(row.attempts)
        log.warning("mail delivery failed", extra={"mail_id": row.id, "status": row.status,
                                                   "permanent": err.permanent})
    else:
        row.status = SENT
        row.sent_at = utcnow()
        if row.kind == "otp":  # the code is a secret: keep no readable copy once it is sent
            row.raw = SCRUBBED
        row.last_error = None
        row.claimed_until = None
        row.next_attempt_at = None
        log.info("mail sent", extra={"mail_id": row.id})
    session.commit()
    return row.status


def deliver(session: Session, backend: FileBackend | SmtpBackend, row_ids: list[str]) -> None:
    """Try to deliver these outbox rows now (the send-mail job, `csss mail resend`).

    Rows another sender holds, or that are not due, are left to it / to the worker.
    """
    for row_id in row_ids:
        row = claim(session, row_id)
        if row is not None:
            _send(session, backend, row)


def deliver_due(session: Session, backend: FileBackend | SmtpBackend, *,
                limit: int = 100, now: datetime | None = None) -> dict[str, int]:
    """Send up to `limit` due messages, one claim at a time; return counts by outcome."""
    counts = {SENT: 0, PENDING: 0, FAILED: 0, UNCERTAIN: 0}
    for _ in range(limit):
        row = claim(session, now=now)
        if row is None:
            break
        counts[_send(session, backend, row, now)] += 1
    return counts
