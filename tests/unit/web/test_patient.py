"""The patient's pages: the released report to read, its download, the assistant and the
emergency line, in a hospital whose clock is not UTC (Tokyo, UTC+9)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from csss_fhir import workflow
from csss_fhir.extensions import services
from csss_fhir.models import Prescription, Scan, User, db
from tests import factories

ZONE = "Asia/Tokyo"


@pytest.fixture
def settings(tmp_path, new_database):
    return factories.settings_for(tmp_path / "instance", new_database(), hospital_timezone=ZONE,
                                  hospital_phone="+81 3 0000 0000", emergency_number="119")


def released_with_medicines(app) -> tuple[str, str]:
    """A released report of the signed-in patient with one active and one cancelled
    prescription; returns (report id, the AI's label)."""
    with app.app_context():
        patient = db.session.query(User).filter_by(role="patient").one()
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED", patient=patient)
        scan = db.session.get(Scan, scan_id)
        pharmacist = factories.make_user("pharmacist")[0]
        for drug, status in (("Amoxicillin", "active"), ("Cefuroxime", "cancelled")):
            db.session.add(Prescription(
                scan_id=scan_id, patient_id=scan.patient_id, pharmacist_id=pharmacist.id,
                medication=drug, dose="500 mg", route="oral", frequency="three times a day",
                duration="7 days", status=status))
        db.session.commit()
        workflow.pharmacy_review(db.session, factories.actor_for(pharmacist), scan_id,
                                 note="Reviewed in a test.")
        workflow.approve(db.session, services(), factories.actor_for(
            factories.make_user("admin")[0]), scan_id)
        scan = db.session.get(Scan, scan_id)
        return scan.report.id, scan.prediction.label


def test_the_report_page_puts_the_doctors_finding_first_and_the_ai_second(app, signed_in):
    browser, _, _ = signed_in("patient")
    report_id, ai_label = released_with_medicines(app)
    page = browser.client.get(f"/patient/reports/{report_id}").get_data(as_text=True)
    order = ["Your doctor's finding", "What it means", "Next steps",
             "Questions about this report?", "+81 3 0000 0000", "Your medicines",
             "Amoxicillin", "The computer's suggestion", "(reviewed by your doctor)"]
    at = page.find('id="main"')  # after the emergency line, which names the phone too
    for part in order:
        found = page.find(part, at)
        assert found > at, f"{part!r} is missing or comes too early"
        at = found
    assert "Cefuroxime" not in page  # cancelled: never shown as a medicine to take
    # The AI's label in words (or "No clear suggestion" for Uncertain), never its code.
    assert ai_label.replace("_", " ") in page or "No clear suggestion" in page
    assert "_" not in ai_label or ai_label not in page


def test_the_report_page_and_the_dashboard_show_hospital_times(app, signed_in):
    browser, _, _ = signed_in("patient")
    report_id, _ = released_with_medicines(app)
    with app.app_context():
        issued = db.session.query(Scan).one().report.issued
    local = issued.astimezone(ZoneInfo(ZONE))
    page = browser.client.get(f"/patient/reports/{report_id}").get_data(as_text=True)
    assert f"Released {local:%d %b %Y, %H:%M} JST" in page
    dashboard = browser.client.get("/patient").get_data(as_text=True)
    assert "JST" in dashboard and " UTC<" not in dashboard


def test_the_pdf_downloads_as_report_and_the_hospitals_date(app, signed_in):
    browser, _, _ = signed_in("patient")
    report_id, _ = released_with_medicines(app)
    with app.app_context():
        issued = db.session.query(Scan).one().report.issued
    response = browser.client.get(f"/patient/reports/{report_id}/pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    day = issued.astimezone(ZoneInfo(ZONE)).date().isoformat()
    assert response.headers["Content-Disposition"] == f'attachment; filename="report-{day}.pdf"'
    dashboard = browser.client.get("/patient").get_data(as_text=True)
    assert f"/patient/reports/{report_id}/pdf" in dashboard


def test_another_patients_report_is_not_found(app, signed_in):
    browser, _, _ = signed_in("patient")
    with app.app_context():
        scan_id, _ = factories.make_scan("REPORT_READY")  # someone else's
        report_id = db.session.get(Scan, scan_id).report.id
    assert browser.client.get(f"/patient/reports/{report_id}").status_code == 404
    assert browser.client.get(f"/patient/reports/{report_id}/pdf").status_code == 404


def test_the_emergency_line_is_on_every_patient_page_and_not_on_staff_pages(app, signed_in):
    browser, _, _ = signed_in("patient")
    report_id, _ = released_with_medicines(app)
    for path in ("/patient", f"/patient/reports/{report_id}", "/account/password",
                 "/patient/reports/no-such-report"):
        page = browser.client.get(path).get_data(as_text=True)
        assert 'id="emergency-line"' in page and 'href="tel:119"><strong>119</strong>' in page, path
    staff, _, _ = signed_in("doctor")
    assert 'id="emergency-line"' not in staff.client.get("/doctor").get_data(as_text=True)


def test_the_assistant_answers_a_red_flag_with_the_emergency_message_alone(app, signed_in):
    browser, _, _ = signed_in("patient")
    page = browser.client.get("/patient", query_string={"q": "cant breth"}).get_data(
        as_text=True)
    answer = re.search(r'<div class="answer answer-emergency" role="alert"(.*?)</div>', page,
                       re.S)
    assert answer, "no emergency answer on the page"
    assert "Call 119 now" in answer.group(1) and "+81 3 0000 0000" in answer.group(1)
    assert "<ul" not in answer.group(1)


def test_the_assistant_sends_medicine_questions_to_the_pharmacist(app, signed_in):
    browser, _, _ = signed_in("patient")
    released_with_medicines(app)
    page = browser.client.get(
        "/patient", query_string={"q": "can I stop antibiotics when I feel better?"}
    ).get_data(as_text=True)
    assert "ask the pharmacist" in page and "Do not stop" in page
    assert "Amoxicillin 500 mg, oral, three times a day, for 7 days" in page
    assert "Cefuroxime" not in page


def test_the_doctor_page_no_longer_says_the_proposal_is_hidden_from_the_patient():
    template = (Path(__file__).parents[3] / "templates" / "web" /
                "doctor_scan.html").read_text()
    assert "never shown to the patient" not in template
    assert "labelled as reviewed by you" in template


def test_times_are_aware_datetimes(app):
    """The filter converts stored UTC times; a naive one would be a bug upstream."""
    with app.app_context():
        rendered = app.jinja_env.filters["hospital_time"](datetime(2025, 3, 14, 23, 30,
                                                                   tzinfo=ZoneInfo("UTC")))
    assert rendered == "15 Mar 2025, 08:30 JST"
