"""The outbox's rules without a mail server: back-off, one claim per row, the worker CLI."""

from __future__ import annotations

from datetime import timedelta

from csss_fhir.cli import cli
from csss_fhir.extensions import services
from csss_fhir.mail import deliveries, outbox
from csss_fhir.mail.backends import SmtpBackend
from csss_fhir.models import MailMessage, utcnow


def queue(session, n: int = 1, kind: str = "report") -> list[str]:
    sender = services().settings.mail_from
    rows = [outbox.enqueue(session, outbox.compose(sender=sender, recipient=f"r{i}@test.local",
                                                   subject="Your report", text="Hello"),
                           kind=kind) for i in range(n)]
    session.commit()
    return [row.id for row in rows]


def test_back_off_doubles_from_30_seconds_up_to_an_hour():
    assert [outbox.retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert outbox.retry_delay(30) == timedelta(hours=1)


def test_a_row_is_claimed_by_one_sender_only(session):
    [row_id] = queue(session)
    first = outbox.claim(session, row_id)
    assert first is not None and first.status == "sending"
    assert outbox.claim(session, row_id) is None
    assert outbox.claim(session) is None


def test_a_lapsed_claim_is_taken_over_with_the_same_message_id(session):
    [row_id] = queue(session)
    first = outbox.claim(session, row_id)
    message_id = first.message_id
    later = utcnow() + timedelta(seconds=outbox.CLAIM_SECONDS + 1)
    again = outbox.claim(session, now=later)
    assert again is not None and again.id == row_id and again.message_id == message_id


def test_temporary_failures_wait_then_fail_after_the_last_attempt(session, settings):
    from dataclasses import replace

    from tests.servers import free_port

    closed = SmtpBackend(replace(settings, smtp_host="127.0.0.1", smtp_port=free_port(),
                                 smtp_security="none", smtp_timeout_seconds=2.0))
    [row_id] = queue(session)
    now = utcnow()
    outbox.deliver(session, closed, [row_id])
    row = session.get(MailMessage, row_id)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at >= now + timedelta(seconds=29)
    row.attempts = outbox.MAX_ATTEMPTS - 1
    session.commit()
    outbox.deliver_due(session, closed, now=utcnow() + timedelta(hours=2))
    row = session.get(MailMessage, row_id)
    assert row.status == "failed" and row.attempts == outbox.MAX_ATTEMPTS


def test_worker_once_sends_what_is_due_to_the_file_outbox(app, session, runner):
    ids = queue(session, 3)
    result = runner.invoke(cli, args=["mail", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 3, retrying 0, failed 0" in result.output
    files = sorted(p.stem for p in (services().instance_path / "outbox").glob("*.eml"))
    session.expire_all()
    assert sorted(session.get(MailMessage, i).message_id for i in ids) == files


def test_resending_a_sent_report_mail_makes_a_new_message(session):
    [row_id] = queue(session)
    outbox.deliver(session, services().mail, [row_id])
    copy = deliveries.resend(session, row_id, svc=services())
    assert copy.mail_id != row_id and copy.status == "pending"
    first = session.get(MailMessage, row_id)
    assert session.get(MailMessage, copy.mail_id).message_id != first.message_id


def test_one_time_code_mails_are_never_resent(session):
    import pytest

    from csss_fhir.errors import InvalidInputError

    [row_id] = queue(session, kind="otp")
    with pytest.raises(InvalidInputError):
        deliveries.resend(session, row_id, svc=services())


def test_every_outbox_row_carries_its_own_single_message_id(session):
    from email import policy
    from email.parser import BytesParser

    [row_id] = queue(session)
    outbox.deliver(session, services().mail, [row_id])
    copy = deliveries.resend(session, row_id, svc=services())
    domains = set()
    for mail_id in (row_id, copy.mail_id):
        row = session.get(MailMessage, mail_id)
        headers = BytesParser(policy=policy.SMTP).parsebytes(row.raw).get_all("Message-ID")
        assert headers == [row.message_id]
        assert f".{row.id}@" in row.message_id  # make_msgid(idstring=row id)
        domains.add(row.message_id.rpartition("@")[2])
    assert len(domains) == 1  # the sender's domain, for the copy too


def test_a_sent_one_time_code_leaves_no_readable_copy(session):
    [row_id] = queue(session, kind="otp")
    outbox.deliver(session, services().mail, [row_id])
    row = session.get(MailMessage, row_id)
    assert row.status == "sent" and row.raw == outbox.SCRUBBED and b"Hello" not in row.raw


def test_the_system_page_counts_rows_stuck_in_sending(app, session):
    from csss_fhir.web.worklists import outbox_backlog

    ids = queue(session, 2)
    claimed = outbox.claim(session, ids[0])
    assert claimed is not None
    claimed.claimed_until = utcnow() - timedelta(minutes=1)  # its sender died
    session.commit()
    assert outbox_backlog(session) == {"pending": 1, "sending": 1, "stuck": 1}
