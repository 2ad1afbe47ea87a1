"""Login, e-mailed one-time codes, and tokens that stop working when the user changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from csss_fhir.models import OtpCode, User, db, utcnow
from csss_fhir.security import otp
from tests.factories import TEST_SECRET, latest_code, make_user, outbox_messages


def test_wrong_password_and_unknown_user_get_the_same_401(client, app):
    with app.app_context():
        user, _ = make_user("doctor")
        email = user.email
    wrong = client.post("/auth/token", json={"username": email, "password": "nope-nope-nope"})
    unknown = client.post("/auth/token", json={"username": "ghost@test.local",
                                               "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_token_carries_role_and_lifetime(client, app):
    with app.app_context():
        user, password = make_user("pharmacist")
        email = user.email
    body = client.post("/auth/token", json={"username": email, "password": password}).get_json()
    assert body["role"] == "pharmacist" and body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600


def test_disabled_or_re_roled_user_loses_access_at_once(client, app, as_role):
    with app.app_context():
        user, password = make_user("doctor")
        email, user_id = user.email, user.id
    token = client.post("/auth/token", json={"username": email, "password": password}
                        ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    with app.app_context():
        db.session.get(User, user_id).role = "pharmacist"
        db.session.commit()
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    with app.app_context():
        row = db.session.get(User, user_id)
        row.role, row.active = "doctor", False
        db.session.commit()
    assert client.get("/fhir/Patient", headers=headers).status_code == 401


def test_otp_email_states_the_configured_lifetime(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    assert client.post("/auth/otp", json={"username": email, "password": password}
                       ).status_code == 202
    message = outbox_messages(app)[-1]
    assert message["To"] == email
    text = message.get_body(("plain",)).get_content()
    assert "valid for 10 minutes" in text
    assert latest_code(app, email) not in message["Subject"]


def test_otp_is_single_use_and_a_new_code_replaces_the_old(session):
    user, _ = make_user("admin")
    first = otp.issue_code(session, user, secret_key=TEST_SECRET,
                           lifetime=timedelta(minutes=10))
    second = otp.issue_code(session, user, secret_key=TEST_SECRET,
                            lifetime=timedelta(minutes=10))
    session.commit()
    if first != second:
        assert not otp.consume_code(session, user, first, secret_key=TEST_SECRET)
    assert otp.consume_code(session, user, second, secret_key=TEST_SECRET)
    assert not otp.consume_code(session, user, second, secret_key=TEST_SECRET)
    stored = session.query(OtpCode).filter_by(user_id=user.id).all()
    assert all(second not in row.code_hash for row in stored)


def test_expired_otp_is_refused(session):
    user, _ = make_user("admin")
    issued = utcnow() - timedelta(minutes=30)
    code = otp.issue_code(session, user, secret_key=TEST_SECRET,
                          lifetime=timedelta(minutes=10), now=issued)
    session.commit()
    assert not otp.consume_code(session, user, code, secret_key=TEST_SECRET)
    assert otp.consume_code(session, user, code, secret_key=TEST_SECRET,
                            now=issued + timedelta(minutes=9))


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567", "", "１２３４５６", "12 345"])
def test_malformed_codes_are_refused(session, code):
    user, _ = make_user("admin")
    assert not otp.consume_code(session, user, code, secret_key=TEST_SECRET)


def test_approve_needs_a_recent_second_factor(session, app):
    from csss_fhir import workflow
    from csss_fhir.extensions import services
    from csss_fhir.security.errors import OtpInvalidError, OtpRequiredError
    from tests.factories import actor_for, make_scan

    scan_id, _ = make_scan("PHARMACIST_COMPLETED")
    admin, _ = make_user("admin")
    stale = actor_for(admin).__class__(
        role="admin", user_id=admin.id, name=admin.name,
        otp_verified_at=utcnow() - timedelta(minutes=11))
    with pytest.raises(OtpRequiredError):
        workflow.approve(session, services(), stale, scan_id)
    with pytest.raises(OtpInvalidError):
        workflow.approve(session, services(), stale, scan_id, code="000000")
    code = otp.issue_code(session, admin, secret_key=TEST_SECRET,
                          lifetime=timedelta(minutes=10))
    session.commit()
    report = workflow.approve(session, services(), stale, scan_id, code=code)
    assert report.status == "final"


def test_full_width_digits_are_a_wrong_code_not_a_500(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    from csss_fhir.models import db as database
    from csss_fhir.security import totp as totp_module

    with app.app_context():
        totp_module.enrol(database.session, database.session.get(type(user), user.id),
                          secret_key=TEST_SECRET, issuer="Test")
    response = client.post("/auth/token", json={"username": email, "password": password,
                                                 "otp": "１２３４５６"})
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["details"]["text"] == "otp-invalid"
