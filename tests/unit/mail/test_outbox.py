"""The outbox's rules without a mail server: back-off, one claim per row, the worker CLI."""

from __future__ import annotations

from datetime import timedelta

from csss_fhir.cli import cli
from csss_fhir.extensions import services
from csss_fhir.mail import deliveries, outbox
from csss_fhir.mail.backends import SmtpBackend
from csss_fhir.models import MailMessage, utcnow
from tests.factories import current_app_object, held_jobs
from tests.servers import Inbox, free_port


def queue(session, n: int = 1, kind: str = "report") -> list[str]:
    """Queue `n` messages and hold their send-mail jobs back: these tests are the senders."""
    sender = services().settings.mail_from
    with held_jobs(current_app_object()) as held:
        rows = [outbox.enqueue(session, outbox.compose(
            sender=sender, recipient=f"r{i}@test.local", subject="Your report", text="Hello"),
            kind=kind) for i in range(n)]
        session.commit()
    ids = [row.id for row in rows]
    assert held == [("send_mail", i) for i in ids]  # one job per row, after the commit
    return ids


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
    with held_jobs(current_app_object()) as held:
        copy = deliveries.resend(session, row_id, svc=services())
    assert copy.mail_id != row_id and copy.status == "pending"
    assert held == [("send_mail", copy.mail_id)]
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


class SlowAfterData(Inbox):
    """An SMTP server that keeps the message but answers DATA only after `delay` seconds
    (the final 250 comes after the sender's timeout)."""

    delay = 3.0

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.messages.append(envelope.content)
        await asyncio.sleep(self.delay)
        return "250 OK"


def test_a_timeout_after_data_is_uncertain_never_retried_and_resent_as_itself(
        session, settings):
    from dataclasses import replace

    from aiosmtpd.controller import Controller

    inbox = SlowAfterData(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        backend = SmtpBackend(replace(settings, mail_backend="smtp", smtp_host="127.0.0.1",
                                      smtp_port=inbox.port, smtp_security="none",
                                      smtp_timeout_seconds=1.0))
        [row_id] = queue(session)
        outbox.deliver(session, backend, [row_id])
        row = session.get(MailMessage, row_id)
        assert row.status == "uncertain" and row.data_started_at is not None
        assert "may have the message" in row.last_error and "SMTP_TIMEOUT=1 s" in row.last_error
        assert len(inbox.messages) == 1  # the server did get it: no blind retry
        later = utcnow() + timedelta(hours=3)
        assert outbox.deliver_due(session, backend, now=later)["sent"] == 0
        message_id = row.message_id
        with held_jobs(current_app_object()) as held:
            again = deliveries.resend(session, row_id, svc=services())  # the administrator decides
        assert (again.mail_id, again.status) == (row_id, "pending")
        assert held == [("send_mail", row_id)]
        assert session.get(MailMessage, row_id).message_id == message_id
    finally:
        controller.stop()


def test_a_server_that_never_greets_is_retried_not_uncertain(session, settings):
    import socket
    from dataclasses import replace

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        backend = SmtpBackend(replace(settings, mail_backend="smtp", smtp_host="127.0.0.1",
                                      smtp_port=silent.getsockname()[1],
                                      smtp_security="none", smtp_timeout_seconds=1.0))
        [row_id] = queue(session)
        outbox.deliver(session, backend, [row_id])
    row = session.get(MailMessage, row_id)
    assert row.status == "pending" and row.data_started_at is None


def test_an_unwritable_mail_folder_is_a_retry_not_an_error(session, tmp_path):
    from csss_fhir.mail.backends import FileBackend

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    [row_id] = queue(session)
    outbox.deliver(session, FileBackend(blocked), [row_id])
    row = session.get(MailMessage, row_id)
    assert row.status == "pending" and "mail folder" in row.last_error


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
