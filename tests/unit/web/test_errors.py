"""The UI's error border: a refused form shows its page again with the refusal; refusals
with no page to return to (unknown id, another role) become error pages."""

from __future__ import annotations

from tests import factories


def test_refused_form_for_an_unknown_scan_is_the_404_page(signed_in):
    browser, _, _ = signed_in("doctor")
    response = browser.post("/doctor/scans/no-such-scan/verify", {"note": "Looked."},
                            page="/doctor")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)


def test_wrong_password_for_a_step_up_code_is_a_form_error_not_a_sign_out(app, signed_in):
    browser, _, _ = signed_in("admin")
    with app.app_context():
        scan_id, _ = factories.make_scan("PHARMACIST_COMPLETED")
    page = f"/admin/scans/{scan_id}"
    response = browser.post(f"{page}/code", {"password": "not-my-password"}, page=page)
    assert response.status_code == 400
    assert "Your password is wrong." in response.get_data(as_text=True)
    assert browser.client.get(page).status_code == 200  # still signed in


def test_refused_new_account_keeps_what_was_typed(signed_in):
    browser, _, _ = signed_in("admin")
    form = {"name": "Dr Short", "email": "short@test.local", "role": "doctor",
            "password": "short"}
    response = browser.post("/admin/users", form, page="/admin/users")
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and 'value="short@test.local"' in text
    assert 'value="Dr Short"' in text


def test_refused_change_to_a_row_leaves_the_new_account_form_empty(signed_in):
    browser, admin_id, _ = signed_in("admin")
    response = browser.post(f"/admin/users/{admin_id}/role", {"role": "pharmacist"},
                            page="/admin/users")
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "your own role" in text
    assert 'value="pharmacist" selected' not in text
