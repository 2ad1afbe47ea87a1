"""workflow.release: an approval queues the report e-mail and never waits on, or fails for,
the mail backend (issue 15 #9)."""

from __future__ import annotations

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
