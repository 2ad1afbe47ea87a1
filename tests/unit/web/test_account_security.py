"""Issue 15 item 1: the second factor cannot be bypassed through the web UI.

The attack chain: an admin bearer token whose second factor is stale (refused at $approve)
is replayed on the UI's routes with the sign-in page's own CSRF token, to enrol a new
authenticator, create an admin and take over another admin's authenticator.
"""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from csss_fhir.models import TotpCredential, User, db, utcnow
from csss_fhir.security import totp
from csss_fhir.security.authentication import issue_token
from tests import factories
from tests.unit.web.conftest import Browser, csrf_of

NEW_ADMIN = {"name": "Mallory Admin", "email": "mallory@test.local", "role": "admin",
             "password": "a-long-enough-password-1"}


def _stale_admin(app) -> tuple[str, str, str, str]:
    """An admin (id, e-mail, password) and a token whose second factor is an hour old."""
    with app.app_context():
        admin, password = factories.make_user("admin")
        token = issue_token(admin, otp_at=int(utcnow().timestamp()) - 3600, minutes=30)
        return admin.id, admin.email, password, token


def _user_exists(app, email: str) -> bool:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email)) is not None


def test_a_bearer_token_never_signs_a_ui_page_in(app, client):
    _, _, _, token = _stale_admin(app)
    bearer = {"Authorization": f"Bearer {token}"}
    response = client.get("/admin/users", headers=bearer)
    assert response.status_code == 302 and "/login" in response.location
    login_csrf = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/admin/users", headers=bearer,
                           data={**NEW_ADMIN, "csrf_token": login_csrf})
    assert response.status_code in (302, 400)
    assert not _user_exists(app, NEW_ADMIN["email"])


def test_the_sign_in_pages_csrf_token_does_not_pass_for_an_admin_action(app, client):
    _, _, _, token = _stale_admin(app)
    login_csrf = csrf_of(client.get("/login").get_data(as_text=True))
    client.set_cookie("access_token_cookie", token)
    response = client.post("/admin/users", data={**NEW_ADMIN, "csrf_token": login_csrf})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert not _user_exists(app, NEW_ADMIN["email"])


def test_stale_second_factor_cannot_enrol_create_or_take_over(app, client):
    admin_id, _, _, token = _stale_admin(app)
    with app.app_context():
        other, _ = factories.make_user("admin")
        from csss_fhir.extensions import services

        totp.enrol(db.session, other, secret_key=services().settings.secret_key,
                   issuer="Test")
        other_id = other.id
    client.set_cookie("access_token_cookie", token)
    browser = Browser(app, client)

    # Enrol an authenticator for the own account: refused without a fresh code.
    response = browser.post("/account/authenticator", {}, page="/account/authenticator")
    assert response.status_code == 401 and 'id="totp-qr"' not in response.get_data(
        as_text=True)
    # Create an admin: refused.
    response = browser.post("/admin/users", NEW_ADMIN, page="/admin/users")
    assert response.status_code == 401
    assert "second factor" in response.get_data(as_text=True)
    assert not _user_exists(app, NEW_ADMIN["email"])
    # Reset, disable or re-role another admin: refused.
    for path, form in ((f"/admin/users/{other_id}/totp/reset", {}),
                       (f"/admin/users/{other_id}/active", {"active": "0"}),
                       (f"/admin/users/{other_id}/role", {"role": "doctor"})):
        assert browser.post(path, form, page="/admin/users").status_code == 401, path
    with app.app_context():
        assert db.session.get(TotpCredential, admin_id) is None
        assert db.session.get(TotpCredential, other_id) is not None
        other = db.session.get(User, other_id)
        assert (other.active, other.role) == (True, "admin")


def test_a_fresh_code_renews_the_window_and_a_reset_shows_no_secret(app, client):
    _, email, password, token = _stale_admin(app)
    with app.app_context():
        other, _ = factories.make_user("admin")
        from csss_fhir.extensions import services

        uri = totp.enrol(db.session, other, secret_key=services().settings.secret_key,
                         issuer="Test")
        other_id, other_secret = other.id, pyotp.parse_uri(uri).secret
    client.set_cookie("access_token_cookie", token)
    browser = Browser(app, client)
    assert browser.post("/admin/users/confirm", {"otp": "000000"},
                        page="/admin/users").status_code == 401
    response = browser.post("/admin/users/code", {"password": "wrong-password-9"},
                            page="/admin/users")
    assert response.status_code == 400 and "password is wrong" in response.get_data(
        as_text=True)
    response = browser.post("/admin/users/code", {"password": password}, page="/admin/users")
    assert response.status_code == 200 and "We e-mailed you" in response.get_data(as_text=True)
    # The e-mailed code confirms, and the cookie's token is renewed.
    code = factories.latest_code(app, email)
    response = browser.post("/admin/users/confirm", {"otp": code}, page="/admin/users")
    assert response.status_code == 302
    assert any(h.startswith("access_token_cookie=")
               for h in response.headers.getlist("Set-Cookie"))
    assert "Confirm it is you" in client.get("/admin/users").get_data(as_text=True)
    assert "needs no new code" in client.get("/admin/users").get_data(as_text=True)

    response = browser.post(f"/admin/users/{other_id}/totp/reset", {}, page="/admin/users",
                            follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Authenticator reset" in html
    assert 'id="totp-qr"' not in html and other_secret not in html
    assert not re.search(r"otpauth://|[A-Z2-7]{32}", html)
    with app.app_context():
        assert db.session.get(TotpCredential, other_id) is None
    assert browser.post("/admin/users", NEW_ADMIN, page="/admin/users").status_code == 302
    assert _user_exists(app, NEW_ADMIN["email"])


def test_only_the_owner_enrols_and_sees_their_secret(app, signed_in):
    browser, admin_id, _ = signed_in("admin")
    response = browser.post("/account/authenticator", {}, page="/account/authenticator")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="totp-qr"' in html
    secret = re.search(r"<code>([A-Z2-7]+)</code>", html).group(1)
    with app.app_context():
        user = db.session.get(User, admin_id)
        from csss_fhir.extensions import services

        assert totp.verify(db.session, user, pyotp.TOTP(secret).now(),
                           secret_key=services().settings.secret_key)


def test_a_doctor_has_no_authenticator_page(signed_in):
    browser, _, _ = signed_in("doctor")
    assert browser.client.get("/account/authenticator").status_code == 403
