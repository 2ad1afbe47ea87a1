"""Issue 11 item 8 in a real browser at a laptop's 1366x768: the doctor's viewer (the image
above the fold, zoom and pan, brightness/contrast, the heat map under an opacity slider, the
patient's other scans one click away) and several approvals with one second factor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Scan, User, db, utcnow
from csss_fhir.security.authentication import issue_token
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1366, "height": 768}


def _page(chromium, *, javascript: bool = True):
    context = chromium.new_context(java_script_enabled=javascript, viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    return context.new_page()


def _two_scans_of_one_patient(site, earlier_state: str, state: str) -> tuple[str, str]:
    with site.app.app_context():
        earlier, patient = factories.make_scan(earlier_state)
        current, _ = factories.make_scan(state, patient=patient)
        return earlier, current


def _loaded(page, selector: str) -> None:
    page.wait_for_function("s => { const image = document.querySelector(s);"
                           " return image && image.complete && image.naturalWidth > 0; }",
                           arg=selector)


def _style(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, "(e, p) => getComputedStyle(e)[p]", prop)


def test_the_image_is_above_the_fold_and_the_controls_change_it(chromium, site_factory):
    site = site_factory(confidence_threshold=0.0)
    earlier, current = _two_scans_of_one_patient(site, "DOCTOR_VERIFIED", "AI_ANALYZED")
    doctor = _page(chromium)
    sign_in(doctor, site, factories.make_login(site.app, "doctor"))
    doctor.goto(site(f"/doctor/scans/{current}"))
    _loaded(doctor, ".scan-image")

    box = doctor.locator(".scan-image").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], box
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box
    assert box["height"] >= 400, box  # big enough to read, not a thumbnail
    expect(doctor.locator(".viewer-toolbar")).to_be_visible()
    screenshot(doctor, "viewer-on-load")

    assert _style(doctor, ".scan-image", "transform") == "none"
    doctor.click("#zoom-in")
    doctor.click("#zoom-in")
    expect(doctor.locator("#zoom-level")).to_have_text("156 %")
    zoomed = _style(doctor, ".scan-image", "transform")
    assert zoomed.startswith("matrix(1.5625, 0, 0, 1.5625"), zoomed
    doctor.focus("#viewer-frame")
    doctor.keyboard.press("ArrowLeft")  # pan: the image moves right under the frame
    panned = _style(doctor, ".scan-image", "transform")
    assert panned != zoomed and float(panned.strip("matrix()").split(",")[4]) > 0, panned

    doctor.fill("#brightness", "150")
    doctor.fill("#contrast", "80")
    assert _style(doctor, ".scan-image", "filter") == "brightness(1.5) contrast(0.8)"

    overlay = doctor.locator("#viewer-frame .gradcam-image")
    expect(overlay).to_be_hidden()  # off (and not computed) until asked for
    expect(doctor.locator("#heatmap-legend")).to_contain_text("not a finding")
    doctor.fill("#heatmap-opacity", "60")
    expect(overlay).to_be_visible()
    _loaded(doctor, "#viewer-frame .gradcam-image")
    assert _style(doctor, "#viewer-frame .gradcam-image", "opacity") == "0.6"
    assert _style(doctor, "#viewer-frame .gradcam-image", "transform") == panned
    legend = doctor.locator("#heatmap-legend").bounding_box()  # read beside the overlay
    assert legend["y"] + legend["height"] <= VIEWPORT["height"], legend
    expect(doctor.locator("#heatmap-opacity-value")).to_have_text("60 %")
    screenshot(doctor, "viewer-zoomed-with-heatmap")

    doctor.click("#viewer-reset")
    assert _style(doctor, ".scan-image", "transform") == "none"
    assert _style(doctor, ".scan-image", "filter") == "brightness(1) contrast(1)"
    expect(overlay).to_be_hidden()

    doctor.fill("#heatmap-opacity", "45")
    doctor.click("#fullscreen")
    doctor.wait_for_function("document.fullscreenElement !== null")
    expect(doctor.locator("#fullscreen")).to_have_attribute("aria-pressed", "true")
    screenshot(doctor, "viewer-fullscreen")
    doctor.click("#fullscreen")
    doctor.wait_for_function("document.fullscreenElement === null")

    link = doctor.locator("#other-scans a")
    expect(link).to_have_count(1)
    expect(doctor.locator("#other-scans")).to_contain_text("Waiting for the pharmacist")
    link.click()
    expect(doctor).to_have_url(re.compile(f"/doctor/scans/{earlier}$"))
    expect(doctor.locator("#current-finding")).to_be_visible()
    expect(doctor.locator("#other-scans a")).to_have_attribute(
        "href", f"/doctor/scans/{current}")


def test_without_javascript_the_image_heatmap_and_other_scans_still_work(chromium,
                                                                         site_factory):
    site = site_factory(confidence_threshold=0.0)
    earlier, current = _two_scans_of_one_patient(site, "REPORT_READY", "AI_ANALYZED")
    doctor = _page(chromium, javascript=False)
    sign_in(doctor, site, factories.make_login(site.app, "doctor"))
    doctor.goto(site(f"/doctor/scans/{current}"))
    box = doctor.locator(".scan-image").bounding_box()
    assert box["y"] + box["height"] <= VIEWPORT["height"], box
    expect(doctor.locator(".viewer-toolbar")).to_be_hidden()
    screenshot(doctor, "viewer-without-javascript")
    heatmap = doctor.locator("#heatmap .gradcam-image")
    heatmap.scroll_into_view_if_needed()
    expect(heatmap).to_be_visible()
    expect(doctor.locator("#heatmap-legend")).to_contain_text("not a finding")
    doctor.click("#other-scans a")
    expect(doctor).to_have_url(re.compile(f"/doctor/scans/{earlier}$"))


def test_two_scans_are_approved_with_one_code(chromium, site_factory):
    site = site_factory()
    with site.app.app_context():
        first, _ = factories.make_scan("PHARMACIST_COMPLETED")
        second, _ = factories.make_scan("PHARMACIST_COMPLETED")
        admin, password = factories.make_user("admin")
        email = admin.email
        # Signed in an hour ago: the sign-in's second factor has lapsed.
        stale = issue_token(db.session.get(User, admin.id),
                            otp_at=int(utcnow().timestamp()) - 3600, minutes=30)
    page = _page(chromium)
    page.context.add_cookies([{"name": "access_token_cookie", "value": stale,
                               "url": site("/")}])

    page.goto(site(f"/admin/scans/{first}"))
    expect(page.locator("#step-up-window")).to_contain_text("Approval needs a second factor")
    page.fill("#password", password)
    page.click("#send-code")
    page.fill("#otp", factories.latest_code(site.app, email))
    page.click("#approve")
    expect(page.locator(".flash-success")).to_contain_text("released")
    expect(page.locator(".flash-success")).to_contain_text(
        re.compile(r"stays valid for (9|10) more minutes"))

    page.goto(site("/admin"))
    expect(page.locator("#step-up-window")).to_contain_text("stays valid for")
    page.goto(site(f"/admin/scans/{second}"))
    expect(page.locator("#step-up-window")).to_contain_text("No new code needed")
    expect(page.locator("#otp")).not_to_have_attribute("required", "")
    screenshot(page, "admin-second-approval-without-code")
    page.click("#approve")  # no code typed
    expect(page.locator(".flash-success")).to_contain_text("released")

    with site.app.app_context():
        assert {db.session.get(Scan, s).task.state for s in (first, second)} == {
            "REPORT_READY"}
