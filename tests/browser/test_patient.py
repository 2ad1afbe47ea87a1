"""A patient in a real browser: the emergency line on every page, a red-flag question, and
the released report's own page (doctor's finding first, the AI second), without JavaScript,
on a desktop and a phone-sized screen."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Scan, User, db
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow

ZONE = "Europe/Berlin"


def test_patient_reads_a_released_report_and_is_sent_to_the_emergency_number(
        chromium, site_factory):
    site = site_factory(hospital_timezone=ZONE, emergency_number="112",
                        hospital_phone="+49 30 0000 0000")
    login = factories.make_login(site.app, "patient", name="Ana María Ortega",
                                 birth_date=date(1984, 2, 29))
    with site.app.app_context():
        patient = db.session.get(User, login.id)
        scan_id, _ = factories.make_scan("REPORT_READY", patient=patient,
                                         image=factories.xray_png(384, seed=3))
        scan = db.session.get(Scan, scan_id)
        report_id, issued = scan.report.id, scan.report.issued
        finding = scan.review.finding

    context = chromium.new_context(java_script_enabled=False,
                                   viewport={"width": 1280, "height": 900},
                                   accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, site, login)

    # The emergency line is the first thing on the page, and a red flag gets it alone.
    expect(page.locator("#emergency-line")).to_contain_text("call 112 now")
    expect(page.locator("#emergency-line")).to_contain_text("+49 30 0000 0000")
    page.fill("#q", "im not sure but my chset hurts and i cant breth")
    page.click("#ask")
    answer = page.locator("#assistant-answer")
    expect(answer).to_have_attribute("data-topic", "emergency")
    expect(answer).to_contain_text("Call 112 now")
    screenshot(page, "patient-assistant-emergency")

    # The report page: the doctor's finding in plain words first, the AI's proposal last.
    page.click("text=Read your report")
    expect(page.locator("h1")).to_have_text("Your chest X-ray report")
    expect(page.locator("#emergency-line")).to_be_visible()
    local = issued.astimezone(ZoneInfo(ZONE))
    expect(page.locator("main")).to_contain_text(f"Released {local:%d %b %Y, %H:%M %Z}")
    expect(page.locator("#doctor-finding")).to_contain_text("What it means")
    expect(page.locator("#ai-proposal")).to_contain_text("reviewed by your doctor")
    sections = page.locator("main section").evaluate_all("els => els.map(e => e.id)")
    assert sections == ["doctor-finding", "report-contact", "report-medicines", "ai-proposal"]
    assert "_" not in page.inner_text("#doctor-finding") or "_" in finding
    screenshot(page, "patient-report")

    with page.expect_download() as download:
        page.click("#report-download")
    assert download.value.suggested_filename == f"report-{local:%Y-%m-%d}.pdf"
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"

    phone = chromium.new_context(java_script_enabled=False,
                                 viewport={"width": 390, "height": 844})
    small = phone.new_page()
    sign_in(small, site, login)
    small.goto(site(f"/patient/reports/{report_id}"))
    expect(small.locator("#emergency-line")).to_be_visible()
    screenshot(small, "patient-report-phone")
    phone.close()
    context.close()
