"""The doctor's "Correct this report" form on a released scan: it proposes an amendment
through workflow.amend, which waits for an administrator; refusals sit beside their fields."""

from __future__ import annotations

import re

from csss_fhir.models import MailMessage, Report, ReportAmendment, Scan, db
from tests import factories


def released_scan(app) -> tuple[str, str]:
    with app.app_context():
        study = factories.make_scan("REPORT_READY")[0]
        return study, db.session.get(Scan, study).report.id


def report_mails(app, report_id: str) -> int:
    with app.app_context():
        return db.session.query(MailMessage).filter_by(report_id=report_id).count()


def test_the_form_shows_to_doctors_on_released_reports_only(app, signed_in):
    with app.app_context():
        waiting = factories.make_scan("AI_ANALYZED")[0]
    study, _ = released_scan(app)
    doctor, _, _ = signed_in("doctor")
    released_page = doctor.client.get(f"/doctor/scans/{study}").get_data(as_text=True)
    assert "Correct this report" in released_page
    assert f'action="/doctor/scans/{study}/amend"' in released_page
    assert 'name="csrf_token"' in released_page
    waiting_page = doctor.client.get(f"/doctor/scans/{waiting}").get_data(as_text=True)
    assert "Correct this report" not in waiting_page
    listed = doctor.client.get("/doctor?waiting=released").get_data(as_text=True)
    assert study in listed and waiting not in listed


def test_other_roles_neither_see_nor_submit_it(app, signed_in):
    study, report_id = released_scan(app)
    admin, _, _ = signed_in("admin")
    assert "Correct this report" not in admin.client.get(
        f"/admin/reports/{report_id}").get_data(as_text=True)
    refused = admin.post(f"/doctor/scans/{study}/amend", {"reason": "Wrong finding."},
                         page="/admin")
    assert refused.status_code == 403
    with app.app_context():
        assert db.session.query(ReportAmendment).count() == 0


def test_a_missing_reason_is_refused_beside_it(app, signed_in):
    study, _ = released_scan(app)
    doctor, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    response = doctor.post(f"{page}/amend", {"finding": "Viral pneumonia", "reason": "  "},
                           page=page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="reason-error">Give the reason for the correction' in html
    reason = re.search(r'<textarea id="reason"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in reason and "autofocus" in reason
    assert 'value="Viral pneumonia"' in html  # what the doctor typed is kept
    assert "<details class=\"amend\" open>" in html
    with app.app_context():
        assert db.session.query(ReportAmendment).count() == 0


def test_uncertain_is_refused_beside_the_finding(app, signed_in):
    study, _ = released_scan(app)
    doctor, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    html = doctor.post(f"{page}/amend", {"finding": "Uncertain", "reason": "Unsure now."},
                       page=page).get_data(as_text=True)
    finding = re.search(r'<input id="finding"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in finding
    assert "“Uncertain” is not a finding" in html


def test_a_correction_waits_for_approval_and_mails_nothing(app, signed_in):
    study, report_id = released_scan(app)
    mails_before = report_mails(app, report_id)
    doctor, _, _ = signed_in("doctor", name="Dr Second Look")
    page = f"/doctor/scans/{study}"
    response = doctor.post(f"{page}/amend", {"finding": "Viral pneumonia", "version": "1",
                                             "reason": "The effusion was missed."},
                           page=page, follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Correction waiting for an administrator&#39;s approval" in html
    pending = re.search(r'<div[^>]*id="pending-amendment".*?</div>', html, re.S).group(0)
    assert "Dr Second Look" in pending and "Viral pneumonia" in pending
    assert "The effusion was missed." in pending
    assert "Correct this report" not in html  # one pending correction at a time
    with app.app_context():
        amendment = db.session.query(ReportAmendment).one()
        assert (amendment.status, amendment.finding) == ("pending", "Viral_Pneumonia")
        report = db.session.get(Report, report_id)
        assert (report.version_id, report.finding) == (1, None)
    assert report_mails(app, report_id) == mails_before
    # The page shows it pending when opened again.
    again = doctor.client.get(page).get_data(as_text=True)
    assert 'id="pending-amendment"' in again
    # The doctor cannot release their own correction: approving is an administrator's step.
    approve = doctor.post(f"/admin/reports/{report_id}/amendment/approve", {}, page=page)
    assert approve.status_code == 403
    with app.app_context():
        assert db.session.query(ReportAmendment).one().status == "pending"


def test_a_report_corrected_meanwhile_is_not_corrected_blindly(app, signed_in):
    study, _ = released_scan(app)
    doctor, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    response = doctor.post(f"{page}/amend", {"reason": "Effusion missed.", "version": "7"},
                           page=page)
    assert response.status_code == 412
    assert "Someone changed this while you had the page open" in response.get_data(
        as_text=True)
