"""Issue 11 in a real browser: verifying without choosing, returning a scan to the patient,
and sending a scan back to the doctor, with screenshots for people to judge."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Scan, db
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1366, "height": 768}


def _page(chromium, *, javascript: bool = True):
    context = chromium.new_context(java_script_enabled=javascript, viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    return context.new_page()


def _scan_of_a_patient(site, state: str) -> tuple[str, factories.UserLogin]:
    """A scan in `state` of a new patient, and that patient's login."""
    with site.app.app_context():
        user, password = factories.make_user("patient", name="Ana María Ortega")
        login = factories.UserLogin(id=user.id, email=user.email, password=password,
                                    role="patient", name=user.name, patient_id=user.patient_id)
        return factories.make_scan(state, patient=user)[0], login


def _state(site, study: str) -> str:
    with site.app.app_context():
        return db.session.get(Scan, study).task.state


def test_verify_without_choosing_shows_the_error_beside_the_choice(chromium, site_factory):
    site = site_factory(confidence_threshold=0.0)
    study, _ = _scan_of_a_patient(site, "AI_ANALYZED")
    doctor = _page(chromium)
    sign_in(doctor, site, factories.make_login(site.app, "doctor"))
    doctor.goto(site(f"/doctor/scans/{study}"))
    expect(doctor.locator("#agree-yes")).not_to_be_checked()
    expect(doctor.locator("#agree-no")).not_to_be_checked()
    doctor.fill("#note", "Lungs clear.")
    doctor.click("#verify")

    error = doctor.locator("#agree-error")
    expect(error).to_contain_text("Choose whether you agree with the AI's proposal")
    expect(doctor.locator("fieldset#agree")).to_have_attribute("aria-invalid", "true")
    expect(doctor.locator("#agree-yes")).to_be_focused()
    expect(doctor.locator("#note")).to_have_value("Lungs clear.")
    assert _state(site, study) == "AI_ANALYZED"
    screenshot(doctor, "doctor-verify-without-choice")

    doctor.check("#agree-no")
    doctor.fill("#finding", "Normal")
    doctor.click("#verify")
    expect(doctor.locator(".flash-success")).to_contain_text("verified")
    assert _state(site, study) == "DOCTOR_VERIFIED"


def test_return_to_patient_asks_the_patient_for_a_new_image(chromium, site_factory):
    site = site_factory(confidence_threshold=0.0)
    study, patient_login = _scan_of_a_patient(site, "AI_ANALYZED")
    doctor = _page(chromium, javascript=False)  # the core flow needs no JavaScript
    sign_in(doctor, site, factories.make_login(site.app, "doctor"))
    doctor.goto(site(f"/doctor/scans/{study}"))
    doctor.click("#return-title")
    doctor.click("#return-scan")  # no reason: refused, beside the field
    expect(doctor.locator("#reason-error")).to_contain_text("reason")
    expect(doctor.locator("#reason")).to_have_attribute("aria-invalid", "true")
    reason = "The image is cut off above the diaphragm; please send a full chest X-ray."
    doctor.fill("#reason", reason)
    screenshot(doctor, "doctor-return-to-patient")
    doctor.click("#return-scan")
    expect(doctor.locator(".flash-success")).to_contain_text("returned")
    expect(doctor.locator("main")).not_to_contain_text("Ana María Ortega")
    assert _state(site, study) == "RETURNED"

    patient = _page(chromium, javascript=False)
    sign_in(patient, site, patient_login)
    row = patient.locator(f"tr[data-scan-id='{study}']")
    expect(row).to_contain_text("Please upload a new image.")
    expect(row).to_contain_text(reason)
    screenshot(patient, "patient-scan-returned")
    with site.app.app_context():
        from csss_fhir.models import MailMessage

        assert db.session.query(MailMessage).filter_by(kind="returned").count() == 1


def test_send_back_returns_the_scan_to_the_doctor(chromium, site_factory):
    site = site_factory(confidence_threshold=0.0)
    study, _ = _scan_of_a_patient(site, "DOCTOR_VERIFIED")
    pharmacist = _page(chromium, javascript=False)
    sign_in(pharmacist, site, factories.make_login(site.app, "pharmacist"))
    expect(pharmacist.locator("table.queue")).to_contain_text("Doctor's finding")
    screenshot(pharmacist, "pharmacist-queue-with-finding")
    pharmacist.goto(site(f"/pharmacist/scans/{study}"))
    pharmacist.click("#send-back-title")
    reason = "The note describes consolidation, the finding says Normal; please review."
    pharmacist.fill("#reason", reason)
    screenshot(pharmacist, "pharmacist-send-back")
    pharmacist.click("#send-back")
    expect(pharmacist.locator(".flash-success")).to_contain_text("sent back")
    assert _state(site, study) == "AI_ANALYZED"

    doctor = _page(chromium)
    sign_in(doctor, site, factories.make_login(site.app, "doctor"))
    expect(doctor.locator("#worklist")).to_contain_text("Ana María Ortega")
    doctor.goto(site(f"/doctor/scans/{study}"))
    history = doctor.locator("ul.history")
    expect(history).to_contain_text("Sent back to the doctor")
    expect(history).to_contain_text(reason)
    expect(history).to_contain_text("Earlier verification (superseded)")
    screenshot(doctor, "doctor-scan-sent-back")
    doctor.check("#agree-no")
    doctor.fill("#finding", "Bacterial_Pneumonia")
    doctor.fill("#note", "Right lower lobe consolidation.")
    doctor.click("#verify")
    expect(doctor.locator(".flash-success")).to_contain_text("verified")
    with site.app.app_context():
        assert db.session.get(Scan, study).review.finding == "Bacterial_Pneumonia"
