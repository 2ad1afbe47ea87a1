"""Report e-mails through a real SMTP server (aiosmtpd) on loopback: arrival, outage and
retry, permanent refusal, and several senders racing. Time is injected, never slept."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from csss_fhir.cli import cli
from csss_fhir.extensions import services
from csss_fhir.mail import deliveries, outbox
from csss_fhir.models import MailMessage, Report, Scan, db, utcnow
from tests import factories
from tests.servers import Inbox, free_port


class RefusingInbox(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 mailbox unavailable"


def start_smtp(handler, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def mail_app(tmp_path, migrated_template):
    from csss_fhir import create_app

    database = tmp_path / "mail.db"
    shutil.copy(migrated_template, database)
    port = free_port()
    app = create_app(factories.settings_for(
        tmp_path / "instance", f"sqlite:///{database}", mail_backend="smtp",
        smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_timeout_seconds=5.0,
        mail_from="CSSS Test <reports@test.local>", confidence_threshold=0.0))
    app.smtp_port = port
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def approved_report(patient_email: str | None = None) -> Report:
    from tests.factories import make_scan, make_user

    patient = make_user("patient", email=patient_email)[0]
    scan_id, _ = make_scan("REPORT_READY", patient=patient)
    return db.session.get(Scan, scan_id).report


def report_mails(report_id: str) -> list[MailMessage]:
    db.session.expire_all()
    return db.session.scalars(select(MailMessage).where(MailMessage.report_id == report_id)
                              ).all()


def test_the_report_arrives_with_the_stored_pdf_byte_for_byte(mail_app):
    inbox = Inbox()
    controller = start_smtp(inbox, mail_app.smtp_port)
    try:
        report = approved_report("ana@test.local")
    finally:
        controller.stop()
    [message] = inbox.to("ana@test.local")
    stored = services().store.get(report.pdf.sha256)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == stored
    assert message.get_body(("plain",)).get_content().startswith("Hello")
    assert "<p>" in message.get_body(("html",)).get_content()
    for word in ("Normal", "COVID", "Opacity", "Pneumonia", "Uncertain"):
        assert word not in message["Subject"]
    [row] = report_mails(report.id)
    assert row.status == "sent" and message["Message-ID"] == row.message_id


def test_with_the_server_down_approval_stands_and_the_mail_arrives_later_once(mail_app):
    report = approved_report("ben@test.local")  # nothing listens on the port yet
    assert report.scan.task.state == "REPORT_READY"
    [row] = report_mails(report.id)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert "unreachable" in row.last_error
    # Not due yet: a worker leaves it alone.
    assert outbox.deliver_due(db.session, services().mail)["sent"] == 0

    inbox = Inbox()
    controller = start_smtp(inbox, mail_app.smtp_port)
    try:
        later = utcnow() + timedelta(minutes=5)
        assert outbox.deliver_due(db.session, services().mail, now=later)["sent"] == 1
        assert outbox.deliver_due(db.session, services().mail, now=later)["sent"] == 0
    finally:
        controller.stop()
    [message] = inbox.to("ben@test.local")
    assert message["Message-ID"] == row.message_id
    assert next(message.iter_attachments()).get_content() == \
        services().store.get(report.pdf.sha256)
    [row] = report_mails(report.id)
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None


def test_a_5xx_refusal_is_recorded_as_failed_and_shown_to_admins(mail_app):
    controller = start_smtp(RefusingInbox(), mail_app.smtp_port)
    try:
        report = approved_report("cleo@test.local")
    finally:
        controller.stop()
    [delivery] = deliveries.report_deliveries(db.session, report.id)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert "550" in delivery.last_error
    result = mail_app.test_cli_runner().invoke(cli, args=["mail", "status", report.id])
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and "550" in result.output

    # The admin fixes the address problem; resend sends the same e-mail again.
    inbox = Inbox()
    controller = start_smtp(inbox, mail_app.smtp_port)
    try:
        result = mail_app.test_cli_runner().invoke(cli, args=["mail", "resend", delivery.mail_id])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "sent"
    [message] = inbox.to("cleo@test.local")
    assert message["Message-ID"] == report_mails(report.id)[0].message_id


def test_two_workers_racing_send_each_message_exactly_once(mail_app):
    sender = services().settings.mail_from
    with factories.held_jobs(mail_app):  # the two workers below are the only senders
        for n in range(24):
            outbox.enqueue(db.session, outbox.compose(
                sender=sender, recipient=f"p{n}@test.local", subject="Your report",
                text="Hello"), kind="report")
        db.session.commit()
    inbox = Inbox()
    controller = start_smtp(inbox, mail_app.smtp_port)
    start = threading.Barrier(2)
    counts: list[dict] = []

    def worker() -> None:
        with mail_app.app_context():
            start.wait()
            counts.append(outbox.deliver_due(db.session, services().mail))
            db.session.remove()

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        controller.stop()
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert sum(c["sent"] for c in counts) == 24
    db.session.expire_all()
    assert {r.status for r in db.session.scalars(select(MailMessage))} == {"sent"}
