"""Issue 11, item 9, in a real browser: each role walks a whole chain (a Not assessable scan
returned to the patient; a scan sent back, prescribed past a dose warning with an override,
approved and amended) at 1366×768. Every page and the PDF must read in words, never in
internal codes, and every refused form must show its error beside the field, marked invalid,
with the focus on it. Screenshots go to the test's tmp dir for people to look at."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import date

import pytest
from playwright.sync_api import expect

from csss_fhir.models import Scan, db
from tests import factories
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1366, "height": 768}

# What must never reach a person: workflow states, class names and reasons with their
# underscores, the title-cased state a template once printed, step and audit codes, and the
# API's own vocabulary.
INTERNAL_CODES = re.compile(
    r"\b(?:PENDING_AI|AI_ANALYZED|DOCTOR_VERIFIED|PHARMACIST_COMPLETED|REPORT_READY)\b"
    r"|\b[A-Za-z]+_[A-Za-z_]+\b"
    r"|\bPending Ai\b|\bAi Analyzed\b|\bRETURNED\b"
    r"|\b(?:pharmacy-review|return-to-patient|send-back|change-prescription"
    r"|approve-amendment|entered-in-error|override-reason)\b"
    r"|\b1101(?:06|10|12|14|22|23)\b"
    r"|\$[a-z][a-z-]+\b|\bagree=|\b(?:ImagingStudy|MedicationRequest|DiagnosticReport)/")

# The text a person can read on a page: what is rendered, and the words in attributes that
# browsers and screen readers show (alternatives, labels, hints, list choices).
READABLE_TEXT = """(skip) => {
  const hidden = skip ? [...document.querySelectorAll(skip)] : [];
  for (const element of hidden) element.dataset.walkSkipped = element.innerText;
  for (const element of hidden) element.innerText = "";
  const parts = [document.title, document.body.innerText];
  for (const element of hidden) element.innerText = element.dataset.walkSkipped;
  for (const element of document.querySelectorAll("[alt], [title], [aria-label], [placeholder]")) {
    for (const name of ["alt", "title", "aria-label", "placeholder"]) {
      if (element.hasAttribute(name)) parts.push(element.getAttribute(name));
    }
  }
  for (const option of document.querySelectorAll("datalist option, select option")) {
    parts.push(option.value && option.closest("datalist") ? option.value : option.textContent);
  }
  return parts.join("\\n");
}"""


def red_square() -> bytes:
    """The issue's 8×8 solid red PNG, which the AI once called COVID at 83 %."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def around(text: str, found: re.Match) -> str:
    return text[max(0, found.start() - 40):found.end() + 40]


class Walk:
    """Pages seen on the walk: each is screenshotted and its readable text searched."""

    def __init__(self, chromium, folder) -> None:
        self.chromium = chromium
        self.folder = folder
        self.leaks: list[str] = []
        self.count = 0

    def page(self, *, javascript: bool = False):
        context = self.chromium.new_context(java_script_enabled=javascript, viewport=VIEWPORT,
                                            accept_downloads=True)
        context.set_default_timeout(15_000)
        return context.new_page()

    def look(self, page, name: str, *, skip: str = "") -> None:
        """Screenshot the page as a clinician sees it and record any internal code on it
        (outside the elements `skip` selects)."""
        self.count += 1
        page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"))
        text = page.evaluate(READABLE_TEXT, skip)
        self.leaks += [f"{name}: {found.group(0)!r} in {around(text, found)!r}"
                       for found in INTERNAL_CODES.finditer(text)]

    def read_pdf(self, data: bytes, name: str) -> str:
        path = self.folder / f"{name}.pdf"
        path.write_bytes(data)
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                              capture_output=True, text=True).stdout
        self.leaks += [f"{name}: {found.group(0)!r}" for found in INTERNAL_CODES.finditer(text)]
        return text


def error_beside(page, field: str, *, focused: str | None = None) -> None:
    """The refusal sits beside `field`, which is invalid, described by it and linked from
    the summary; the focus is on `focused` (default: the field itself)."""
    message = page.locator(f"#{field}-error")
    expect(message).to_be_visible()
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field}")).to_have_attribute(
        "aria-describedby", re.compile(rf"(^|\s){re.escape(field)}-error(\s|$)"))
    expect(page.locator(f"#page-error a[href='#{field}']")).to_have_text(
        message.inner_text())
    expect(page.locator(focused or f"#{field}")).to_be_focused()
    assert page.locator("[aria-invalid=true]").count() <= 2  # the field (and its fieldset)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
def test_every_role_reads_words_and_sees_errors_beside_fields(chromium, site_factory,
                                                               tmp_path):
    site = site_factory(confidence_threshold=0.0)  # never Uncertain: the agree choice shows
    walk = Walk(chromium, tmp_path)
    people = {role: factories.make_login(site.app, role, **(
        {"name": "Ana María Ortega", "birth_date": date(1984, 2, 29), "mrn": "MRN-0042"}
        if role == "patient" else {})) for role in ("patient", "doctor", "pharmacist", "admin")}
    files = {"red.png": red_square(), "chest.png": factories.xray_png(384, seed=3),
             "notes.png": b"not an image, only text that says it is one\n" * 20}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    # Patient (with JavaScript): a file that is no image is refused beside the file field.
    patient = walk.page(javascript=True)
    sign_in(patient, site, people["patient"])
    patient.set_input_files("#file", str(tmp_path / "notes.png"))
    patient.fill("#description", "From the walk-in clinic")
    patient.click("#upload")
    error_beside(patient, "file")
    expect(patient.locator("#description")).to_have_value("From the walk-in clinic")
    walk.look(patient, "patient-upload-refused")
    for name in ("red.png", "chest.png"):
        patient.set_input_files("#file", str(tmp_path / name))
        patient.click("#upload")
        expect(patient.locator(".flash-success")).to_contain_text("uploaded")
    walk.look(patient, "patient-two-scans")
    with site.app.app_context():
        scans = {scan.prediction.assessable: scan.id for scan in db.session.query(Scan)}
    unassessable, chest = scans[False], scans[True]

    # Doctor: the Not assessable scan asks for a finding, then goes back to the patient.
    doctor = walk.page(javascript=True)
    sign_in(doctor, site, people["doctor"])
    expect(doctor.locator("#worklist")).to_contain_text("Not assessable")
    walk.look(doctor, "doctor-worklist")
    doctor.goto(site(f"/doctor/scans/{unassessable}"))
    expect(doctor.locator("#not-assessable-banner")).to_be_visible()
    expect(doctor.locator("#agree-yes")).to_have_count(0)
    walk.look(doctor, "doctor-not-assessable")
    doctor.fill("#note", "Image unreadable.")
    doctor.click("#verify")
    error_beside(doctor, "finding")
    expect(doctor.locator("#note")).to_have_value("Image unreadable.")
    walk.look(doctor, "doctor-not-assessable-refused")
    doctor.click("#return-title")
    doctor.click("#return-scan")
    error_beside(doctor, "reason")
    walk.look(doctor, "doctor-return-refused")
    doctor.fill("#reason", "This is not a chest X-ray; please send the image from the clinic.")
    doctor.click("#return-scan")
    expect(doctor.locator(".flash-success")).to_contain_text("returned")

    # Doctor: the chest scan, verified only once agree or disagree is chosen.
    doctor.goto(site(f"/doctor/scans/{chest}"))
    walk.look(doctor, "doctor-scan")
    doctor.fill("#note", "Right lower lobe consolidation.")
    doctor.click("#verify")
    error_beside(doctor, "agree", focused="#agree-yes")
    walk.look(doctor, "doctor-verify-refused")
    doctor.check("#agree-no")
    doctor.fill("#finding", "Bacterial pneumonia")
    doctor.click("#verify")
    expect(doctor.locator(".flash-success")).to_contain_text("verified")

    # Pharmacist (no JavaScript): send back with a reason, then prescribe past a warning.
    pharmacist = walk.page()
    sign_in(pharmacist, site, people["pharmacist"])
    walk.look(pharmacist, "pharmacist-queue")
    page = site(f"/pharmacist/scans/{chest}")
    pharmacist.goto(page)
    pharmacist.click("#send-back-title")
    pharmacist.click("#send-back")
    error_beside(pharmacist, "reason")
    walk.look(pharmacist, "pharmacist-send-back-refused")
    pharmacist.fill("#reason", "The note says consolidation; please confirm the side.")
    pharmacist.click("#send-back")
    expect(pharmacist.locator(".flash-success")).to_contain_text("sent back")

    doctor.goto(site(f"/doctor/scans/{chest}"))
    expect(doctor.locator("ul.history")).to_contain_text("Sent back to the doctor")
    walk.look(doctor, "doctor-scan-sent-back")
    doctor.check("#agree-no")
    doctor.fill("#finding", "Bacterial pneumonia")
    doctor.fill("#note", "Right lower lobe consolidation, confirmed on the lateral view.")
    doctor.click("#verify")
    expect(doctor.locator(".flash-success")).to_contain_text("verified")

    pharmacist.goto(page)
    pharmacist.click("#add-prescription")
    error_beside(pharmacist, "drug")
    pharmacist.fill("#drug", "Amoxicilin")
    pharmacist.fill("#dose", "5000")
    pharmacist.select_option("#route", "26643006")
    pharmacist.select_option("#frequency", "3/1/d")
    pharmacist.fill("#duration", "5")
    pharmacist.click("#add-prescription")
    expect(pharmacist.locator(".dose-warning")).to_contain_text("exceeds")
    pharmacist.click("#complete-review")
    error_beside(pharmacist, "review_note")
    pharmacist.fill("#review_note", "Allergies checked; no interactions.")
    pharmacist.click("#complete-review")
    error_beside(pharmacist, "override_reason")
    expect(pharmacist.locator("#review_note")).to_have_value(
        "Allergies checked; no interactions.")
    walk.look(pharmacist, "pharmacist-override-refused")
    pharmacist.fill("#override_reason", "Severe infection; dose agreed with the consultant.")
    pharmacist.click("#complete-review")
    expect(pharmacist.locator(".flash-success")).to_contain_text("completed")

    # Admin: a wrong code is refused beside the code; approve; then approve an amendment.
    admin = walk.page()
    sign_in(admin, site, people["admin"])
    walk.look(admin, "admin-dashboard")
    admin.goto(site(f"/admin/scans/{chest}"))
    expect(admin.locator("#doctor-finding")).to_contain_text("differs from the AI's proposal")
    expect(admin.locator("#override-summary")).to_contain_text("Severe infection")
    walk.look(admin, "admin-scan")
    admin.fill("#otp", "000000")
    admin.click("#approve")
    error_beside(admin, "otp")
    walk.look(admin, "admin-approve-refused")
    admin.fill("#otp", "")
    admin.click("#approve")
    expect(admin.locator(".flash-success")).to_contain_text("released")
    with site.app.app_context():
        report_id = db.session.get(Scan, chest).report.id

    # Doctor: the released report is corrected through the form; a reason is required, and
    # the correction waits for the administrator.
    doctor.goto(site("/doctor?waiting=released"))
    doctor.click(f"tr[data-scan-id='{chest}'] a")
    doctor.click("#amend-title")
    doctor.fill("#finding", "Viral pneumonia")
    doctor.click("#propose-amendment")
    error_beside(doctor, "reason")
    expect(doctor.locator("#finding")).to_have_value("Viral pneumonia")
    walk.look(doctor, "doctor-amend-refused")
    doctor.fill("#reason", "The effusion on the left was missed.")
    doctor.click("#propose-amendment")
    expect(doctor.locator(".flash-success")).to_contain_text(
        "Correction waiting for an administrator's approval")
    expect(doctor.locator("#pending-amendment")).to_contain_text("Viral pneumonia")
    expect(doctor.locator("#report-finding")).to_have_text("Bacterial pneumonia")
    walk.look(doctor, "doctor-amendment-pending")

    admin.goto(site(f"/admin/reports/{report_id}"))
    expect(admin.locator("#pending-amendment")).to_contain_text("Finding now: Bacterial pneumonia")
    expect(admin.locator("#pending-amendment")).to_contain_text("Viral pneumonia")
    walk.look(admin, "admin-amendment")
    admin.click("#approve-amendment")
    expect(admin.locator(".flash-success")).to_contain_text("Amendment approved")
    expect(admin.locator("#report-finding")).to_have_text("Viral pneumonia")
    walk.look(admin, "admin-report")
    for path in ("/admin/users", "/admin/system"):
        admin.goto(site(path))
        walk.look(admin, path.strip("/").replace("/", "-"))
    # The audit trail names what was touched by its identifiers and request (its purpose);
    # the event, action and outcome are in words, and people are named.
    admin.goto(site("/admin/audit"))
    expect(admin.locator("#audit")).to_contain_text("Ana María Ortega")
    walk.look(admin, "admin-audit", skip="#audit td:nth-child(5) .muted, "
                                         "#audit td:nth-child(6) .muted, #audit td.wrap")

    # Patient: the returned scan and the report, on the page and in the PDF.
    patient.goto(site("/patient"))
    expect(patient.locator(f"#returned-{unassessable}")).to_contain_text("not a chest X-ray")
    walk.look(patient, "patient-dashboard")
    patient.click("text=Read your report")
    expect(patient.locator("main")).to_contain_text(
        "Pneumonia caused by a virus (in medical words: Viral pneumonia)")
    walk.look(patient, "patient-report")
    with patient.expect_download() as download:
        patient.click("#report-download")
    pdf = walk.read_pdf(open(download.value.path(), "rb").read(), "patient-report")
    assert "Viral pneumonia" in pdf and "Severe infection" in pdf

    # A wrong password at sign-in sits beside the password; the address stays.
    stranger = walk.page()
    stranger.goto(site("/login"))
    stranger.fill("#email", people["doctor"].email)
    stranger.fill("#password", "not-the-password")
    stranger.click("button[value=sign-in]")
    error_beside(stranger, "password")
    expect(stranger.locator("#email")).to_have_value(people["doctor"].email)
    walk.look(stranger, "login-refused")

    assert walk.count >= 20
    assert not walk.leaks, "internal codes on pages or in the PDF:\n" + "\n".join(walk.leaks)
