"""The report e-mail: its words come from the templates, and it goes to the patient's address."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from csss_fhir.extensions import services
from csss_fhir.mail import messages
from csss_fhir.models import MailMessage, Patient, Scan
from tests.factories import make_scan


def test_the_report_message_greets_the_patient_and_attaches_the_pdf(session):
    settings = services().settings
    message = messages.report_message(settings, recipient="p@test.local",
                                      patient_name="Ada Lovelace",
                                      released=datetime(2025, 3, 14, 23, 30, tzinfo=UTC),
                                      pdf=b"%PDF-")
    assert message["Subject"] == f"Your report from {settings.hospital_name} is ready"
    assert "Hello Ada Lovelace" in message.get_body(("plain",)).get_content()
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "report-2025-03-14.pdf"
    assert attachment.get_content() == b"%PDF-"


def test_the_report_mail_goes_to_the_account_when_the_patient_record_has_no_address(session):
    scan_id, user = make_scan("REPORT_READY")
    report = session.get(Scan, scan_id).report
    patient = session.get(Patient, report.patient_id)
    patient.email = None
    mail_id = messages.queue_report_mail(session, services().settings, report, b"%PDF-")
    raw = session.get(MailMessage, mail_id).raw
    assert BytesParser(policy=policy.default).parsebytes(raw)["To"] == user.email


def test_no_report_mail_is_queued_without_any_address(session):
    scan_id, user = make_scan("REPORT_READY")
    report = session.get(Scan, scan_id).report
    session.get(Patient, report.patient_id).email = None
    user.patient_id = None  # no account speaks for this patient any more
    assert messages.queue_report_mail(session, services().settings, report, b"%PDF-") is None


def test_the_attachment_is_named_after_the_hospitals_day(session):
    """23:30 UTC on 14 March is already 15 March in Berlin (UTC+1)."""
    settings = replace(services().settings, hospital_timezone="Europe/Berlin")
    message = messages.report_message(settings, recipient="p@test.local", patient_name="A",
                                      released=datetime(2025, 3, 14, 23, 30, tzinfo=UTC),
                                      pdf=b"%PDF-")
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "report-2025-03-15.pdf"
    assert attachment["Content-Disposition"].startswith("attachment")
