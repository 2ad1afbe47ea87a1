"""The sign-in cookie and the CSRF scheme: a cookie alone never changes anything."""

from __future__ import annotations

from csss_fhir.models import Scan, db
from tests import factories
from tests.unit.web.conftest import csrf_of


def test_sign_in_sets_an_httponly_samesite_cookie_and_goes_home(app, client):
    with app.app_context():
        user, password = factories.make_user("doctor")
        email = user.email
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302 and response.location.endswith("/doctor")
    cookie = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith("access_token_cookie="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert client.get("/doctor").status_code == 200


def test_login_post_without_the_csrf_token_is_refused(app, client):
    with app.app_context():
        user, password = factories.make_user("patient")
        email = user.email
    client.get("/login")
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert not any(h.startswith("access_token_cookie=")
                   for h in response.headers.getlist("Set-Cookie"))


def test_signed_in_form_post_without_the_token_changes_nothing(app, signed_in):
    browser, _, _ = signed_in("doctor")
    with app.app_context():
        scan_id, _ = factories.make_scan("PENDING_AI")
    response = browser.client.post(f"/doctor/scans/{scan_id}/classify", data={})
    assert response.status_code == 400
    response = browser.client.post(f"/doctor/scans/{scan_id}/classify",
                                   data={"csrf_token": "forged"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "PENDING_AI"


def test_fhir_with_the_cookie_but_no_csrf_token_cannot_change_anything(app, signed_in):
    browser, _, _ = signed_in("doctor")
    with app.app_context():
        scan_id, _ = factories.make_scan("PENDING_AI")
    response = browser.client.post(f"/fhir/ImagingStudy/{scan_id}/$classify")
    assert response.status_code == 401
    factories.parse_fhir(response.get_data(), "OperationOutcome")
    with app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "PENDING_AI"


def test_fhir_bearer_calls_are_unaffected_by_the_cookie_mode(app, client, as_role):
    headers = as_role("doctor")
    with app.app_context():
        scan_id, _ = factories.make_scan("PENDING_AI")
    response = client.post(f"/fhir/ImagingStudy/{scan_id}/$classify", headers=headers)
    assert response.status_code == 201
    factories.parse_fhir(response.get_data(), "Observation")


def test_expired_session_shows_the_expiry_message(app, client):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    with app.app_context():
        user, _ = factories.make_user("doctor")
        expired = create_access_token(identity=user.id, additional_claims={"role": "doctor"},
                                      expires_delta=timedelta(seconds=-5))
    client.set_cookie("access_token_cookie", expired)
    response = client.get("/doctor")
    assert response.status_code == 302 and "expired=1" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "Your session has ended" in page


def test_not_signed_in_goes_to_the_sign_in_page(client):
    response = client.get("/pharmacist")
    assert response.status_code == 302 and response.location.endswith("/login")


def test_sign_out_ends_the_session(signed_in):
    browser, _, _ = signed_in("pharmacist")
    response = browser.post("/logout")
    assert response.status_code == 302 and "signed_out=1" in response.location
    assert browser.client.get("/pharmacist").status_code == 302
