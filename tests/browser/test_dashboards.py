"""The whole chain through the UI in a real browser, with four users; plus the Uncertain
path, a wrong-role URL and a bad upload. Most pages run with JavaScript disabled: the core
flow must not need it."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Blob, Scan, db
from csss_fhir.workflow.states import ScanState
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow  # a real Chromium per session, a server per test

NO_JS = {"java_script_enabled": False, "viewport": {"width": 1280, "height": 900}}


def _page(chromium, **options):
    context = chromium.new_context(**options)
    context.set_default_timeout(10_000)
    return context.new_page()


def _people(site) -> dict[str, factories.UserLogin]:
    patient = {"birth_date": date(1984, 2, 29), "gender": "female", "mrn": "MRN-0042",
               "name": "Ana María Ortega"}
    return {role: factories.make_login(site.app, role, **(patient if role == "patient" else {}))
            for role in ("patient", "doctor", "pharmacist", "admin")}


def test_whole_chain_through_the_ui(chromium, site_factory, tmp_path):
    site = site_factory(confidence_threshold=0.0)
    people = _people(site)
    scan_file = tmp_path / "chest.png"
    scan_file.write_bytes(factories.xray_png(384, seed=3))

    # Patient: upload, then see the scan's state in plain words.
    patient = _page(chromium, **NO_JS)
    sign_in(patient, site, people["patient"])
    expect(patient.locator("h1")).to_have_text("My scans")
    expect(patient.locator("#file-help")).to_contain_text("10 MB")
    patient.set_input_files("#file", str(scan_file))
    patient.fill("#description", "Taken at the walk-in clinic")
    patient.click("#upload")
    expect(patient.locator(".flash-success")).to_contain_text("uploaded")
    # The AI job ran right after the upload committed (inline in tests).
    expect(patient.locator("#my-scans")).to_contain_text("AI analysis done")
    patient.fill("#q", "where is my scan?")
    patient.click("#ask")
    expect(patient.locator("#assistant-answer")).to_contain_text("AI analysis done")
    screenshot(patient, "patient-dashboard")

    # Doctor: worklist, the AI's proposal (already there), the chart and Grad-CAM, verify.
    doctor = _page(chromium, **NO_JS)
    sign_in(doctor, site, people["doctor"])
    expect(doctor.locator("#worklist")).to_contain_text("Ana María Ortega")
    screenshot(doctor, "doctor-worklist")
    doctor.click("#worklist a:has-text('Open')")
    expect(doctor.locator("table.chart")).to_be_visible()
    expect(doctor.locator("#uncertain-banner")).to_have_count(0)
    # Without JavaScript: the plain image, and the heat map as a second image with its legend.
    expect(doctor.locator(".scan-image")).to_be_visible()
    expect(doctor.locator(".viewer-toolbar")).to_be_hidden()
    doctor.locator("#heatmap").scroll_into_view_if_needed()
    expect(doctor.locator("#heatmap .gradcam-image")).to_be_visible()
    expect(doctor.locator("#heatmap-legend")).to_contain_text("not a finding")
    overlay = doctor.context.request.get(
        site(doctor.locator(".gradcam-image").get_attribute("src")))
    assert overlay.status == 200 and overlay.body()[:8] == b"\x89PNG\r\n\x1a\n"
    screenshot(doctor, "doctor-scan")
    doctor.fill("#note", "Lungs clear; no consolidation.")
    doctor.check("#agree-yes")  # nothing is chosen for the doctor (issue 11)
    doctor.click("#verify")
    expect(doctor.locator(".flash-success")).to_contain_text("verified")

    # Pharmacist: the doctor's finding, a structured prescription, complete.
    pharmacist = _page(chromium, **NO_JS)
    sign_in(pharmacist, site, people["pharmacist"])
    pharmacist.click("table.queue a:has-text('Open')")
    expect(pharmacist.locator("#doctor-note")).to_have_text("Lungs clear; no consolidation.")
    for field, value in (("#drug", "Amoxicillin"), ("#dose", "500"), ("#duration", "7"),
                         ("#notes", "Take with food")):
        pharmacist.fill(field, value)
    pharmacist.select_option("#route", "26643006")
    pharmacist.select_option("#frequency", "3/1/d")
    pharmacist.click("#add-prescription")
    expect(pharmacist.locator("#prescriptions")).to_contain_text("Amoxicillin")
    screenshot(pharmacist, "pharmacist-scan")
    pharmacist.fill("#review_note", "No interactions found.")
    pharmacist.click("#complete-review")
    expect(pharmacist.locator(".flash-success")).to_contain_text("completed")
    screenshot(pharmacist, "pharmacist-queue")

    # Admin: sign in with the e-mailed code, approve, see the PDF and the e-mail state.
    admin = _page(chromium, **NO_JS)
    sign_in(admin, site, people["admin"])
    screenshot(admin, "admin-dashboard")
    admin.click("table.queue a:has-text('Open')")
    screenshot(admin, "admin-scan")
    admin.click("#approve")
    expect(admin.locator(".flash-success")).to_contain_text("released")
    expect(admin.locator("#mail-status")).to_contain_text("sent")
    pdf = admin.context.request.get(site(admin.locator("#report-pdf").get_attribute("href")))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    screenshot(admin, "admin-report")
    for path, name in (("/admin/users", "admin-users"), ("/admin/system", "admin-system"),
                       ("/admin/audit", "admin-audit")):
        admin.goto(site(path))
        screenshot(admin, name)
    expect(admin.locator("h1")).to_have_text("Audit log")

    # Patient: the report is released; download the PDF.
    patient.goto(site("/patient"))
    expect(patient.locator("#my-scans")).to_contain_text("Report approved and released")
    with patient.expect_download() as download:
        patient.click("text=Download report (PDF)")
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"
    screenshot(patient, "patient-report-ready")
    with site.app.app_context():  # never the preliminary AI result
        prediction = db.session.query(Scan).one().prediction
        ai_words = {prediction.label.replace("_", " "), f"{prediction.confidence * 100:.1f}"}
    assert not any(word in patient.inner_text("main") for word in ai_words)
    expect(patient.locator("table.chart")).to_have_count(0)


def test_uncertain_result_needs_an_explicit_finding(chromium, site_factory):
    site = site_factory(confidence_threshold=1.0)
    with site.app.app_context():
        scan_id, _ = factories.make_scan("PENDING_AI")
    page = _page(chromium, **NO_JS)
    sign_in(page, site, factories.make_login(site.app, "doctor"))
    page.goto(site(f"/doctor/scans/{scan_id}"))
    page.click("#run-ai")
    banner = page.locator("#uncertain-banner")
    expect(banner).to_contain_text("Uncertain — explicit finding required")
    expect(page.locator("#finding")).to_have_attribute("required", "")
    expect(page.locator("#agree-yes")).to_have_count(0)
    screenshot(page, "doctor-scan-uncertain")

    # The browser's `required` is a convenience; the workflow is the rule. Send the form
    # without a finding anyway (the request API bypasses the browser's own check).
    token = page.locator("input[name=csrf_token]").last.get_attribute("value")
    response = page.context.request.post(site(f"/doctor/scans/{scan_id}/verify"), form={
        "csrf_token": token, "agree": "no", "note": "Hazy.", "finding": ""})
    assert response.status == 400
    assert "explicit" in response.text()
    with site.app.app_context():
        assert db.session.get(Scan, scan_id).task.state == ScanState.AI_ANALYZED

    page.fill("#finding", "Viral_Pneumonia")
    page.fill("#note", "Bilateral interstitial pattern.")
    page.click("#verify")
    expect(page.locator(".flash-success")).to_contain_text("verified")
    with site.app.app_context():
        scan = db.session.get(Scan, scan_id)
        assert scan.task.state == ScanState.DOCTOR_VERIFIED
        assert scan.review.finding == "Viral_Pneumonia"


def test_wrong_role_url_shows_the_403_page(chromium, site_factory):
    site = site_factory()
    page = _page(chromium, **NO_JS)
    sign_in(page, site, factories.make_login(site.app, "patient"))
    response = page.goto(site("/doctor"))
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator("main")).to_contain_text("doctor dashboard")
    screenshot(page, "forbidden")


def test_bad_upload_shows_an_error_and_stores_nothing(chromium, site_factory, tmp_path):
    site = site_factory()
    patient = factories.make_login(site.app, "patient")
    fake = tmp_path / "chest.png"
    fake.write_bytes(b"this is not an image, just text pretending to be one\n" * 20)
    page = _page(chromium)  # with JavaScript, as most patients have it
    sign_in(page, site, patient)
    page.set_input_files("#file", str(fake))
    page.click("#upload")
    expect(page.locator("#page-error")).to_be_visible()
    screenshot(page, "patient-bad-upload")
    with site.app.app_context():
        assert db.session.query(Scan).count() == 0
        assert db.session.query(Blob).count() == 0
    assert site.app.extensions["csss"].store.count() == 0


def test_not_assessable_scan_needs_a_finding_and_can_be_run_again(chromium, site_factory):
    from csss_fhir.extensions import services
    from csss_fhir.workflow import classification

    site = site_factory()
    with site.app.app_context():
        scan_id, _ = factories.make_scan("PENDING_AI")
        classification.record_not_assessable(
            db.session, services(), scan_id,
            "the AI analysis failed 3 times (ImageDecodeError); the image may be damaged")
    page = _page(chromium, **NO_JS)
    sign_in(page, site, factories.make_login(site.app, "doctor"))
    page.goto(site("/doctor"))
    expect(page.locator("main")).to_contain_text("Not assessable")
    page.goto(site(f"/doctor/scans/{scan_id}"))
    expect(page.locator("#not-assessable-banner")).to_contain_text("the image may be damaged")
    expect(page.locator("#ai-label")).to_have_text("Not assessable")
    expect(page.locator("#agree-yes")).to_have_count(0)  # nothing to agree with
    expect(page.locator("#finding")).to_have_attribute("required", "")
    expect(page.locator(".gradcam-image")).to_have_count(0)
    screenshot(page, "doctor-scan-not-assessable")

    page.click("#rerun-ai")  # this image decodes: the re-run proposes a class
    expect(page.locator("#not-assessable-banner")).to_have_count(0)
    expect(page.locator("#ai-label")).not_to_have_text("Not assessable")
    screenshot(page, "doctor-scan-rerun")
    with site.app.app_context():
        scan = db.session.get(Scan, scan_id)
        assert scan.task.state == ScanState.AI_ANALYZED and scan.prediction.assessable


def test_an_admin_enrols_their_own_authenticator_and_resets_anothers(chromium, site_factory):
    site = site_factory()
    admin = factories.make_login(site.app, "admin", name="Grace Admin")
    other = factories.make_login(site.app, "admin", name="Olu Other")
    with site.app.app_context():
        from csss_fhir.models import User
        from csss_fhir.security import totp

        totp.enrol(db.session, db.session.get(User, other.id),
                   secret_key=site.app.extensions["csss"].settings.secret_key, issuer="Test")
    page = _page(chromium, **NO_JS)
    sign_in(page, site, admin)
    page.goto(site("/account/authenticator"))
    page.click("#enrol")
    expect(page.locator("#totp-qr")).to_be_visible()
    screenshot(page, "admin-authenticator-enrolled")
    page.goto(site("/admin/users"))
    expect(page.locator("#step-up")).to_contain_text("needs no new code")
    page.click(f"form[action$='/users/{other.id}/totp/reset'] button")
    expect(page.locator("main")).to_contain_text("Authenticator reset")
    expect(page.locator("#totp-qr")).to_have_count(0)
    screenshot(page, "admin-users-after-reset")
