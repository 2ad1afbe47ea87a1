"""The UI of issue 11: no default agreement, errors beside their fields, return to the
patient, send back to the doctor, priority, worklists that triage, and no codes on pages."""

from __future__ import annotations

import re

import pytest

from csss_fhir.models import Scan, db
from tests import factories


def scan_in(app, state: str, **kwargs) -> str:
    with app.app_context():
        return factories.make_scan(state, **kwargs)[0]


def state_of(app, study: str) -> str:
    with app.app_context():
        return db.session.get(Scan, study).task.state


def test_the_verify_form_preselects_nothing(app, signed_in):
    study = scan_in(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    html = browser.client.get(f"/doctor/scans/{study}").get_data(as_text=True)
    radios = re.findall(r'<input type="radio" id="agree-(?:yes|no)"[^>]*>', html)
    assert len(radios) == 2
    assert not any("checked" in radio for radio in radios)


def test_verify_without_a_choice_shows_the_error_beside_the_choice(app, signed_in):
    study = scan_in(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    response = browser.post(f"{page}/verify", {"note": "Clear lungs.", "finding": ""},
                            page=page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="agree-error">Choose whether you agree' in html
    fieldset = re.search(r'<fieldset id="agree"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in fieldset
    first_radio = re.search(r'<input type="radio" id="agree-yes"[^>]*>', html).group(0)
    assert "autofocus" in first_radio and "checked" not in first_radio
    assert 'Clear lungs.' in html  # what the doctor typed is kept
    assert state_of(app, study) == "AI_ANALYZED"


def test_a_missing_note_is_marked_on_the_note(app, signed_in):
    study = scan_in(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    html = browser.post(f"{page}/verify", {"agree": "no", "finding": "Normal"},
                        page=page).get_data(as_text=True)
    note = re.search(r'<textarea id="note"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in note and "autofocus" in note
    assert 'id="note-error"' in html


def test_the_doctor_returns_a_scan_and_the_patient_sees_why(app, signed_in, browser):
    with app.app_context():
        patient_user, password = factories.make_user("patient")
        email = patient_user.email
        study = factories.make_scan("AI_ANALYZED", patient=patient_user)[0]
    doctor, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    refused = doctor.post(f"{page}/return", {"reason": " "}, page=page)
    assert refused.status_code == 400
    assert 'id="reason-error"' in refused.get_data(as_text=True)
    response = doctor.post(f"{page}/return", {"reason": "The image is rotated; please "
                                                         "send an upright chest X-ray."},
                           page=page)
    assert response.status_code == 302
    assert state_of(app, study) == "RETURNED"
    worklist = doctor.client.get("/doctor").get_data(as_text=True)
    assert study not in worklist
    doctor.client.post("/logout", data={"csrf_token": doctor.token("/doctor")})

    browser.sign_in(email, password, "patient")
    html = browser.client.get("/patient").get_data(as_text=True)
    assert "Please upload a new image." in html
    assert "please send an upright chest X-ray." in html


@pytest.mark.parametrize(("role", "state", "page", "queue"), [
    ("pharmacist", "DOCTOR_VERIFIED", "/pharmacist/scans/{}", "/pharmacist"),
    ("admin", "PHARMACIST_COMPLETED", "/admin/scans/{}", "/admin"),
])
def test_send_back_from_the_scan_page(app, signed_in, role, state, page, queue):
    study = scan_in(app, state)
    browser, _, _ = signed_in(role)
    page = page.format(study)
    refused = browser.post(f"{page}/send-back", {"reason": ""}, page=page)
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert 'id="reason-error"' in html and "<details class=\"send-back\" open" in html
    response = browser.post(f"{page}/send-back", {"reason": "Finding and note disagree."},
                            page=page)
    assert response.status_code == 302
    assert state_of(app, study) == "AI_ANALYZED"
    html = browser.client.get(page).get_data(as_text=True)
    assert "Earlier verification (superseded)" in html
    assert "Finding and note disagree." in html
    assert study not in browser.client.get(queue).get_data(as_text=True)


def test_urgent_scans_lead_the_worklist_with_age_wait_and_flags(app, signed_in):
    from datetime import date

    from csss_fhir.models import Patient

    with app.app_context():
        user = factories.make_user("patient")[0]
        db.session.get(Patient, user.patient_id).birth_date = date(1950, 1, 1)
        db.session.commit()
        older = factories.make_scan("AI_ANALYZED")[0]
        newer = factories.make_scan("AI_ANALYZED", patient=user)[0]
    browser, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{newer}"
    assert browser.post(f"{page}/priority", {"priority": "urgent"},
                        page=page).status_code == 302
    html = browser.client.get("/doctor").get_data(as_text=True)
    assert html.index(newer) < html.index(older)
    assert "Urgent" in html and "Routine" in html
    assert "<th scope=\"col\">Age</th>" in html and "<th scope=\"col\">Waiting</th>" in html
    assert " min" in html
    age = date.today().year - 1950 - (date.today() < date(date.today().year, 1, 1))
    assert f"<td>{age}</td>" in html


def test_pharmacy_and_approval_queues_show_the_doctors_finding(app, signed_in):
    scan_in(app, "DOCTOR_VERIFIED")
    browser, _, _ = signed_in("pharmacist")
    html = browser.client.get("/pharmacist").get_data(as_text=True)
    assert "Doctor's finding" in html
    finding = re.search(r'class="doctor-finding"><strong>([^<]+)</strong>', html).group(1)
    assert "_" not in finding


def test_pages_show_words_not_codes(app, signed_in):
    study = scan_in(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    for path in ("/doctor", f"/doctor/scans/{study}"):
        html = browser.client.get(path).get_data(as_text=True)
        visible = re.sub(r"<[^>]+>", " ", html)
        for code in ("Pending Ai", "Ai Analyzed", "AI_ANALYZED", "Bacterial_Pneumonia",
                     "Viral_Pneumonia", "Lung_Opacity"):
            assert code not in visible, (path, code)
        assert "Waiting for the doctor" in visible


@pytest.fixture
def blind_site(tmp_path, migrated_template):
    import shutil

    from csss_fhir import create_app

    shutil.copy(migrated_template, tmp_path / "blind.db")
    return create_app(factories.settings_for(
        tmp_path / "instance", f"sqlite:///{tmp_path / 'blind.db'}", blind_read=True,
        confidence_threshold=0.0))


def test_blind_read_hides_the_ai_until_a_provisional_finding_and_keeps_both(blind_site):
    from tests.unit.web.conftest import Browser

    app = blind_site
    with app.app_context():
        study = factories.make_scan("AI_ANALYZED")[0]
        user, password = factories.make_user("doctor")
        email = user.email
    browser = Browser(app, app.test_client())
    browser.sign_in(email, password, "doctor")
    page = f"/doctor/scans/{study}"
    html = browser.client.get(page).get_data(as_text=True)
    assert 'id="blind-read-note"' in html
    assert 'id="ai-label"' not in html and "gradcam" not in html and 'id="verify"' not in html

    refused = browser.post(f"{page}/blind-read", {"provisionalFinding": ""}, page=page)
    assert refused.status_code == 400 and 'id="provisionalFinding-error"' in \
        refused.get_data(as_text=True)
    shown = browser.post(f"{page}/blind-read", {"provisionalFinding": "Lung opacity"},
                         page=page).get_data(as_text=True)
    assert 'id="ai-label"' in shown
    assert '<input type="hidden" name="provisionalFinding" value="Lung opacity">' in shown

    response = browser.post(f"{page}/verify", {
        "provisionalFinding": "Lung opacity", "agree": "no", "finding": "Normal",
        "note": "Clear on second look."}, page=page)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        review = db.session.get(Scan, study).review
        assert (review.provisional_finding, review.finding) == ("Lung opacity", "Normal")


def test_a_finding_chosen_in_words_is_kept_as_its_class(app, signed_in):
    study = scan_in(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{study}"
    html = browser.client.get(page).get_data(as_text=True)
    assert '<option value="Bacterial pneumonia">' in html
    assert 'value="Bacterial_Pneumonia"' not in html
    response = browser.post(f"{page}/verify", {"agree": "no", "finding": "Bacterial pneumonia",
                                               "note": "Consolidation."}, page=page)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Scan, study).review.finding == "Bacterial_Pneumonia"
