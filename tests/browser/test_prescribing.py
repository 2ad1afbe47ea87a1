"""The pharmacist in a real browser: a typo'd overdose is flagged beside the prescription,
corrected as a new version, a wrong one cancelled, and the review completed past a remaining
warning only with an override reason (JavaScript off: the flow must not need it)."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Prescription, Scan, db
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow


def test_pharmacist_corrects_cancels_and_overrides_dose_warnings(chromium, site_factory):
    site = site_factory()
    pharmacist_login = factories.make_login(site.app, "pharmacist")
    with site.app.app_context():
        patient = factories.make_user("patient", name="Kwame Asante",
                                      birth_date=date(1961, 5, 4))[0]
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED", patient=patient)
    context = chromium.new_context(java_script_enabled=False,
                                   viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, site, pharmacist_login)
    page.goto(site(f"/pharmacist/scans/{scan_id}"))

    def prescribe(drug: str, dose: str, unit: str, frequency: str) -> None:
        page.fill("#drug", drug)
        page.fill("#dose", dose)
        page.select_option("#unit", unit)
        page.select_option("#route", "26643006")
        page.select_option("#frequency", frequency)
        page.fill("#duration", "5")
        page.click("#add-prescription")

    # The typo: ten times the dose, and a misspelt name the formulary still knows.
    prescribe("Amoxicilin", "5000", "mg", "3/1/d")
    expect(page.locator(".flash-warning")).to_contain_text("dose warning")
    expect(page.locator(".dose-warning")).to_contain_text(
        "15,000 mg a day exceeds the adult maximum of 4,000 mg a day")
    page.click("#prescriptions tr[data-for='Amoxicilin'] a:has-text('Correct')")
    expect(page.locator("#rx-title")).to_have_text("Correct the prescription")
    expect(page.locator("#dose")).to_have_value("5000")
    page.fill("#dose", "500")
    page.click("#save-prescription")
    expect(page.locator(".flash-success")).to_contain_text("corrected")
    expect(page.locator(".dose-warning")).to_have_count(0)

    # A prescription for the wrong patient is cancelled, not deleted.
    prescribe("Doxycycline", "100", "mg", "2/1/d")
    page.locator("#prescriptions tr[data-for='Doxycycline'] button:has-text('Cancel')").click()
    expect(page.locator("#prescriptions tr:has-text('Doxycycline')")).to_contain_text(
        "Entered in error")

    # A deliberate high dose: the review needs a reason.
    prescribe("Paracetamol", "1.5", "g", "4/1/d")
    expect(page.locator(".dose-warning")).to_contain_text("6,000 mg a day exceeds")
    expect(page.locator("#override_reason")).to_be_visible()
    page.fill("#review_note", "Interactions checked.")
    screenshot(page, "pharmacist-dose-warning")
    page.click("#complete-review")
    expect(page.locator("#page-error")).to_contain_text("override reason")
    expect(page.locator(".dose-warning")).to_contain_text("paracetamol")
    page.fill("#review_note", "Interactions checked.")
    page.fill("#override_reason", "Weight 110 kg; dose agreed with the consultant")
    page.click("#complete-review")
    expect(page.locator(".flash-success")).to_contain_text("completed")

    with site.app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "PHARMACIST_COMPLETED"
        rows = {p.medication: p for p in db.session.query(Prescription)}
        assert (rows["Amoxicilin"].version_id, rows["Amoxicilin"].dose) == (2, "500 mg")
        assert rows["Doxycycline"].status == "entered-in-error"
        assert rows["Paracetamol"].override_reason.startswith("Weight 110 kg")
    context.close()
