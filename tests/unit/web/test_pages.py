"""The UI's routes through the Flask test client: forms, refusals and 403 pages."""

from __future__ import annotations

import io

import pytest

from csss_fhir.models import Blob, Prescription, Scan, User, db
from tests import factories


@pytest.mark.parametrize(("role", "path"), [
    ("patient", "/doctor"), ("patient", "/admin/users"), ("doctor", "/pharmacist"),
    ("pharmacist", "/admin"), ("doctor", "/patient"), ("admin", "/doctor"),
])
def test_another_roles_dashboard_is_a_403_page(signed_in, role, path):
    browser, _, _ = signed_in(role)
    response = browser.client.get(path)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Not allowed" in page and "St. Test General" in page


def test_every_dashboard_renders_for_its_role(signed_in):
    for role, path in (("patient", "/patient"), ("doctor", "/doctor"),
                       ("pharmacist", "/pharmacist"), ("admin", "/admin"),
                       ("admin", "/admin/users"), ("admin", "/admin/system"),
                       ("admin", "/admin/audit")):
        browser, _, _ = signed_in(role)
        response = browser.client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])
        assert 'name="csrf_token"' in response.get_data(as_text=True)


def test_patient_upload_stores_a_scan_and_shows_its_state(app, signed_in):
    browser, _, patient_id = signed_in("patient")
    response = browser.post("/patient/scans", {
        "file": (io.BytesIO(factories.xray_jpeg()), "chest.jpg")}, page="/patient",
        content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    # The classification job ran right after the upload committed (inline in tests).
    assert "AI analysis done; waiting for a doctor" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Scan).filter_by(patient_id=patient_id).count() == 1


def test_bad_upload_is_a_clear_error_and_stores_nothing(app, signed_in):
    browser, _, _ = signed_in("patient")
    response = browser.post("/patient/scans", {
        "file": (io.BytesIO(b"%PDF-1.4 not a scan"), "scan.png")}, page="/patient",
        content_type="multipart/form-data")
    assert response.status_code in (400, 415)
    assert 'id="page-error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Blob).count() == 0


def test_upload_without_a_file_asks_for_one(signed_in):
    browser, _, _ = signed_in("patient")
    response = browser.post("/patient/scans", {}, page="/patient",
                            content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose a file" in response.get_data(as_text=True)


def test_patient_never_sees_the_ai_result(app, signed_in):
    browser, _, _ = signed_in("patient")
    with app.app_context():
        patient = db.session.query(User).filter_by(role="patient").one()
        scan_id, _ = factories.make_scan("AI_ANALYZED", patient=patient)
        label = db.session.get(Scan, scan_id).prediction.label
    page = browser.client.get("/patient").get_data(as_text=True)
    assert "waiting for a doctor" in page and label not in page
    assert browser.client.get(f"/scans/{scan_id}/gradcam").status_code == 403
    assert browser.client.get(f"/scans/{scan_id}/image").status_code in (403, 404)


def test_help_assistant_answers_my_scan_from_own_states(app, signed_in):
    browser, _, _ = signed_in("patient")
    page = browser.client.get("/patient?q=where+is+my+scan").get_data(as_text=True)
    assert "not uploaded a scan yet" in page


def test_verify_uncertain_without_finding_is_refused_by_the_workflow(app, signed_in):
    browser, _, _ = signed_in("doctor")
    with app.app_context():
        scan_id, _ = factories.make_scan("AI_ANALYZED")
        uncertain = db.session.get(Scan, scan_id).prediction.uncertain
    page = f"/doctor/scans/{scan_id}"
    response = browser.post(f"{page}/verify", {"note": "Looked.", "agree": "no"}, page=page)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert ("explicit" in text) if uncertain else ("finding" in text)
    with app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "AI_ANALYZED"
    response = browser.post(f"{page}/verify", {"note": "Looked.", "agree": "no",
                                               "finding": "Normal"}, page=page)
    assert response.status_code == 302


def test_pharmacist_adds_a_structured_prescription_and_completes(app, signed_in):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    page = f"/pharmacist/scans/{scan_id}"
    assert "Verified in a test." in browser.client.get(page).get_data(as_text=True)
    response = browser.post(f"{page}/prescriptions", {"drug": ""}, page=page)
    assert response.status_code == 400 and "drug name is required" in \
        response.get_data(as_text=True)
    response = browser.post(f"{page}/prescriptions", {
        "drug": "Amoxicillin", "dose": "five hundred", "unit": "mg"}, page=page)
    assert response.status_code == 400 and "dose must be a positive number" in \
        response.get_data(as_text=True)
    response = browser.post(f"{page}/prescriptions", {
        "drug": "Amoxicillin", "dose": "500", "unit": "mg", "route": "26643006",
        "frequency": "3/1/d", "duration": "7", "notes": "with food"}, page=page)
    assert response.status_code == 302
    with app.app_context():
        row = db.session.query(Prescription).filter_by(scan_id=scan_id).one()
        assert (row.medication, row.dose, row.route, row.frequency, row.duration) == \
            ("Amoxicillin", "500 mg", "Oral route", "3 times a day", "7 days")
        assert row.dosage_instruction[0]["doseAndRate"][0]["doseQuantity"] == {
            "value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
        assert row.warnings is None
    assert browser.post(f"{page}/complete", {"review_note": "ok"}, page=page).status_code == 302
    with app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "PHARMACIST_COMPLETED"


def test_admin_approve_with_a_stale_second_factor_asks_for_a_code(app, client, browser):
    from csss_fhir.security.authentication import issue_token

    with app.app_context():
        scan_id, _ = factories.make_scan("PHARMACIST_COMPLETED")
        admin, password = factories.make_user("admin")
        token = issue_token(admin, otp_at=None, minutes=5)
        email = admin.email
    client.set_cookie("access_token_cookie", token)
    page = f"/admin/scans/{scan_id}"
    response = browser.post(f"{page}/approve", {}, page=page)
    assert response.status_code == 401 and "second factor" in response.get_data(as_text=True)
    response = browser.post(f"{page}/code", {"password": password}, page=page)
    assert response.status_code == 200 and "We e-mailed you" in response.get_data(as_text=True)
    response = browser.post(f"{page}/approve", {"otp": factories.latest_code(app, email)},
                            page=page, follow_redirects=True)
    assert response.status_code == 200 and "Open the PDF" in response.get_data(as_text=True)


def test_admin_manages_users(app, signed_in):
    browser, admin_id, _ = signed_in("admin")
    response = browser.post("/admin/users", {
        "name": "Dr New", "email": "new.doctor@test.local", "role": "doctor",
        "password": "a-long-enough-password-1"}, page="/admin/users")
    assert response.status_code == 302
    with app.app_context():
        user_id = db.session.query(User).filter_by(email="new.doctor@test.local").one().id
    assert browser.post(f"/admin/users/{user_id}/role", {"role": "pharmacist"},
                        page="/admin/users").status_code == 302
    assert browser.post(f"/admin/users/{user_id}/active", {"active": "0"},
                        page="/admin/users").status_code == 302
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.role, user.active) == ("pharmacist", False)
    response = browser.post(f"/admin/users/{admin_id}/active", {"active": "0"},
                            page="/admin/users")
    assert response.status_code == 400 and "your own account" in response.get_data(as_text=True)
    response = browser.post("/account/authenticator", {}, page="/account/authenticator")
    assert response.status_code == 200 and 'id="totp-qr"' in response.get_data(as_text=True)


def test_password_change_checks_the_current_password(app, client):
    from tests.unit.web.conftest import Browser

    with app.app_context():
        user, password = factories.make_user("doctor")
        email = user.email
    browser = Browser(app, client)
    browser.sign_in(email, password, "doctor")
    form = {"current_password": "wrong-password-x", "new_password": "another-password-22",
            "confirm_password": "another-password-22"}
    response = browser.post("/account/password", form)
    assert response.status_code == 400 and "current password is wrong" in \
        response.get_data(as_text=True)
    form["current_password"] = password
    assert browser.post("/account/password", form).status_code == 302
    browser.post("/logout")
    browser.sign_in(email, "another-password-22", "doctor")


def test_admin_sees_a_failed_delivery_and_sends_it_again(app, signed_in):
    from csss_fhir.models import MailMessage, Report, db

    with app.app_context():
        scan_id, _ = factories.make_scan("REPORT_READY")
        report_id = db.session.query(Report).filter_by(scan_id=scan_id).one().id
        mail = db.session.query(MailMessage).filter_by(report_id=report_id).one()
        mail.status, mail.last_error = "failed", "SMTP 550"
        db.session.commit()
        mail_id = mail.id
    browser, _, _ = signed_in("admin")
    page = browser.client.get(f"/admin/reports/{report_id}").get_data(as_text=True)
    assert "failed" in page and "SMTP 550" in page
    response = browser.post(f"/admin/reports/{report_id}/mail/{mail_id}/resend",
                            page=f"/admin/reports/{report_id}")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(MailMessage, mail_id).status == "sent"


def test_the_new_user_form_offers_exactly_the_patient_genders(signed_in):
    import re

    from csss_fhir.registration import GENDERS

    browser, _, _ = signed_in("admin")
    html = browser.client.get("/admin/users").get_data(as_text=True)
    gender_select = html.split('id="new-gender"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]*)"', gender_select) == ["", *GENDERS]


def test_staff_image_page_of_a_dicom_scan_is_the_rendered_png(app, signed_in):
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    del dataset.PatientID  # belongs to whichever patient uploads it
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    browser, _, _ = signed_in("doctor")
    with app.app_context():
        scan_id, _ = factories.make_scan("AI_ANALYZED", image=buffer.getvalue())
    response = browser.client.get(f"/scans/{scan_id}/image")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.content_type == "image/png"
    assert response.data.startswith(b"\x89PNG")
    # A CT slice is "Not assessable" for a chest-radiograph model: no heatmap is drawn for it.
    assert browser.client.get(f"/scans/{scan_id}/gradcam").status_code == 404
