"""The mail outbox: each e-mail is a row, written in the transaction that decides to send
it and delivered afterwards by `csss_fhir.mail.outbox`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from csss_fhir.models.base import UTCDateTime, db, new_id, utcnow


class MailMessage(db.Model):
    """An e-mail to send; written in the transaction that decides to send it."""

    __tablename__ = "mail_message"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # otp | report
    report_id: Mapped[str | None] = mapped_column(ForeignKey("report.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The outbox sender's bookkeeping (mail/outbox.py): when a pending row is next due, and
    # until when a sender that claimed it ("sending") holds it.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set just before the message body goes to the server: a sender lost after this point
    # may have delivered it, so the row becomes `uncertain`, never retried blindly.
    data_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
