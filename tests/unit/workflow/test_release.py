"""workflow.release: an approval queues the report e-mail and never waits on, or fails for,
the mail backend (issue 15 #9)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from csss_fhir.models import MailMessage, Report
from tests.factories import make_scan, parse_fhir


def test_an_approval_succeeds_when_the_mail_backend_cannot_write(app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("PHARMACIST_COMPLETED")
    headers = as_role("admin")  # signs in with the code from the file outbox
    outbox_dir = Path(app.instance_path) / "outbox"
    shutil.rmtree(outbox_dir)
    outbox_dir.write_text("a file where the mail folder should be")
    response = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    report = parse_fhir(response.data, "DiagnosticReport")
    with app.app_context():
        from csss_fhir.models import db

        assert db.session.get(Report, report.id) is not None
        [mail] = db.session.query(MailMessage).filter_by(report_id=report.id).all()
        assert mail.status == "pending" and mail.attempts == 1  # the job tried; retried later
        assert "mail folder" in mail.last_error


def test_a_not_assessable_scan_is_released_with_the_doctors_finding(session):
    from pypdf import PdfReader

    from csss_fhir import workflow
    from csss_fhir.extensions import services
    from csss_fhir.workflow import classification
    from tests.factories import actor_for, make_user

    scan_id, _ = make_scan("PENDING_AI")
    svc = services()
    classification.record_not_assessable(session, svc, scan_id, "not a radiograph")
    workflow.verify(session, actor_for(make_user("doctor")[0]), scan_id, note="Clear lungs.",
                    agree=False, finding="Normal")
    workflow.pharmacy_review(session, actor_for(make_user("pharmacist")[0]), scan_id,
                             note="None needed.")
    report = workflow.approve(session, svc, actor_for(make_user("admin")[0]), scan_id)
    text = "".join(page.extract_text() for page in PdfReader(
        io.BytesIO(svc.store.get(report.pdf.sha256))).pages)
    assert "Not assessable" in text and "Normal" in text
