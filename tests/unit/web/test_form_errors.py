"""Errors beside their fields on every form (issue 11, item 9): a refused form marks the field
at fault invalid, puts the message beside it in clinical words, focuses it, keeps what was
typed, and links to it from the summary at the top; a refusal about no field stays in the
summary alone."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest

from csss_fhir.errors import CsssError, InvalidInputError
from csss_fhir.web import errors
from csss_fhir.workflow.errors import OverrideRequiredError, WrongStateError
from tests import factories


def red_square() -> bytes:
    """The issue's 8×8 solid red PNG: too small for the AI to judge."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def field_marked(html: str, field: str) -> str:
    """The element with id `field`, checked to carry the error the way every form does."""
    tag = re.search(rf'<(?:input|textarea|select|fieldset)\b[^>]*\bid="{re.escape(field)}"[^>]*>',
                    html)
    assert tag, f"no field #{field} on the page"
    element = tag.group(0)
    assert 'aria-invalid="true"' in element, element
    assert re.search(rf'aria-describedby="[^"]*\b{re.escape(field)}-error\b', element), element
    assert "autofocus" in element, element
    assert f'<p class="field-error" id="{field}-error">' in html
    assert f'<a href="#{field}">' in html  # the summary links to it
    others = re.findall(r'<[^>]*aria-invalid="true"[^>]*>', html)
    assert all(f'id="{field}' in other for other in others), others  # one field, not more
    return element


def error_beside(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    assert found, f"no error beside #{field}"
    return found.group(1)


def test_shown_takes_the_first_matching_wording_and_its_field():
    error = InvalidInputError("a note is required", field="note")
    messages = {OverrideRequiredError: "no", "note": errors.Beside("review_note", "Write it.")}
    assert errors.shown(error, messages) == ("review_note", "Write it.")
    assert errors.shown(error, {(InvalidInputError, None): "no"}) == ("note", None)
    assert errors.shown(InvalidInputError("x"), {(InvalidInputError, None): "yes"}) == \
        (None, "yes")
    assert errors.shown(CsssError("x", field="reason"), {}) == ("reason", None)


def test_sentences_carry_no_workflow_codes():
    moved = WrongStateError("pharmacy-review needs the scan in state DOCTOR_VERIFIED; it is in "
                            "PHARMACIST_COMPLETED", details="PHARMACIST_COMPLETED")
    text = errors.sentence(moved)
    assert "Waiting for approval" in text and "_" not in text
    quoted = InvalidInputError("you disagree with the AI: give your 'finding'")
    assert errors.sentence(quoted) == "You disagree with the AI: give your finding."


def test_pharmacy_note_is_refused_beside_the_note_field(app, signed_in):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    page = f"/pharmacist/scans/{scan_id}"
    response = browser.post(f"{page}/complete", {"review_note": " "}, page=page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    field_marked(html, "review_note")
    assert error_beside(html, "review_note").startswith("Write the pharmacy note")


def test_override_reason_is_refused_beside_it_and_the_note_is_kept(app, signed_in):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        patient = factories.make_user("patient", birth_date=date(1970, 1, 1))[0]
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED", patient=patient)
    page = f"/pharmacist/scans/{scan_id}"
    browser.post(f"{page}/prescriptions", {"drug": "Paracetamol", "dose": "1.5", "unit": "g",
                                           "frequency": "4/1/d"}, page=page)
    response = browser.post(f"{page}/complete", {"review_note": "Interactions checked."},
                            page=page)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    field_marked(html, "override_reason")
    assert "dose warning stands" in error_beside(html, "override_reason")
    assert ">Interactions checked.</textarea>" in html
    assert "override-reason" not in html  # the /fhir parameter's name stays in the API


@pytest.mark.parametrize(("form", "field"), [
    ({"drug": ""}, "drug"),
    ({"drug": "Amoxicillin", "dose": "lots"}, "dose"),
    ({"drug": "Amoxicillin", "dose": "500", "route": "by-ear"}, "route"),
    ({"drug": "Amoxicillin", "frequency": "hourly"}, "frequency"),
    ({"drug": "Amoxicillin", "duration": "-3"}, "duration"),
])
def test_prescription_fields_are_refused_beside_themselves(app, signed_in, form, field):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    page = f"/pharmacist/scans/{scan_id}"
    response = browser.post(f"{page}/prescriptions", form, page=page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    field_marked(html, field)
    if form.get("drug"):
        assert 'value="Amoxicillin"' in html  # what was typed stays


def test_send_back_reason_is_refused_beside_it_in_words(app, signed_in):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    page = f"/pharmacist/scans/{scan_id}"
    html = browser.post(f"{page}/send-back", {"reason": ""}, page=page).get_data(as_text=True)
    field_marked(html, "reason")
    assert "'reason'" not in error_beside(html, "reason")


def test_a_not_assessable_scan_asks_for_the_finding_beside_it(app, signed_in):
    with app.app_context():
        scan_id, _ = factories.make_scan("AI_ANALYZED", image=red_square())
    browser, _, _ = signed_in("doctor")
    page = f"/doctor/scans/{scan_id}"
    form = browser.client.get(page).get_data(as_text=True)
    assert 'id="not-assessable-banner"' in form
    assert 'id="agree-yes"' not in form  # nothing to agree with
    response = browser.post(f"{page}/verify", {"agree": "no", "note": "Seen."}, page=page)
    html = response.get_data(as_text=True)
    field_marked(html, "finding")
    assert "agree=false" not in html


def test_wrong_sign_in_is_beside_the_password_and_keeps_the_address(app, client):
    with app.app_context():
        user, _ = factories.make_user("doctor")
        email = user.email
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"email": email, "password": "wrong-password",
                                           "csrf_token": token})
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    field_marked(html, "password")
    assert f'value="{email}"' in html
    email_tag = re.search(r'<input id="email"[^>]*>', html).group(0)
    assert "autofocus" not in email_tag  # the focus goes to the field at fault only


def test_wrong_approval_code_is_beside_the_code(app, signed_in):
    browser, _, _ = signed_in("admin")
    with app.app_context():
        scan_id, _ = factories.make_scan("PHARMACIST_COMPLETED")
    page = f"/admin/scans/{scan_id}"
    html = browser.post(f"{page}/approve", {"otp": "000000"}, page=page).get_data(as_text=True)
    field_marked(html, "otp")


def test_weak_password_for_a_new_account_is_beside_it(signed_in):
    browser, _, _ = signed_in("admin")
    form = {"name": "Dr New", "email": "new@test.local", "role": "doctor", "password": "short"}
    response = browser.post("/admin/users", form, page="/admin/users")
    html = response.get_data(as_text=True)
    field_marked(html, "new-password")
    assert 'value="new@test.local"' in html


def test_taken_address_for_a_new_account_is_beside_it(app, signed_in):
    browser, _, _ = signed_in("admin")
    with app.app_context():
        taken = factories.make_user("doctor")[0].email
    form = {"name": "Dr Two", "email": taken, "role": "doctor", "password": "a-long-passphrase-9"}
    html = browser.post("/admin/users", form, page="/admin/users").get_data(as_text=True)
    field_marked(html, "new-email")


def test_mismatched_new_passwords_are_beside_the_second(signed_in):
    browser, _, _ = signed_in("doctor")
    response = browser.post("/account/password", {
        "current_password": "x", "new_password": "a-long-passphrase-9",
        "confirm_password": "another-passphrase-9"})
    assert response.status_code == 400
    field_marked(response.get_data(as_text=True), "confirm_password")


def test_a_file_that_is_no_image_is_refused_beside_the_file(signed_in):
    browser, _, _ = signed_in("patient")
    response = browser.post("/patient/scans", {
        "file": (io.BytesIO(b"%PDF-1.4 not a scan"), "scan.png"),
        "description": "From St. Mary's"}, page="/patient", content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    field_marked(html, "file")
    assert 'value="From St. Mary&#39;s"' in html
    # In a patient's words, not the API's ("judged from its content, not its name").
    assert "We could not open this file as an X-ray image." in error_beside(html, "file")
    assert "judged from" not in html


def test_a_refusal_about_no_field_stays_in_the_summary(app, signed_in):
    browser, admin_id, _ = signed_in("admin")
    response = browser.post(f"/admin/users/{admin_id}/role", {"role": "pharmacist"},
                            page="/admin/users")
    html = response.get_data(as_text=True)
    summary = re.search(r'<div class="flash flash-error error-summary" role="alert" '
                        r'id="page-error">(.*?)</div>', html, re.S).group(1)
    assert "your own role" in summary and "<a href" not in summary
    assert 'aria-invalid="true"' not in html


def test_an_unknown_scan_is_not_found_in_words(signed_in):
    browser, _, _ = signed_in("doctor")
    response = browser.client.get("/doctor/scans/no-such-scan")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "not one you may see" in html
    assert "ImagingStudy/" not in html
