"""Tokens stop working on logout (the deny-list), when the user is disabled, and when the
security stamp moves on (password change, disable-then-enable, role change)."""

from __future__ import annotations

from csss_fhir import accounts
from csss_fhir.cli import cli
from csss_fhir.extensions import services
from csss_fhir.models import RevokedToken, User, db
from tests.factories import actor_for, auth_headers, make_user


def test_logout_revokes_the_token_until_it_would_expire(app, client):
    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    headers = auth_headers(client, app, email, password, "doctor")
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 200
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    assert client.post("/auth/logout", headers=headers).status_code == 401
    with app.app_context():
        revoked = db.session.query(RevokedToken).one()
        assert revoked.expires_at > revoked.revoked_at
    fresh = auth_headers(client, app, email, password, "doctor")
    assert client.get("/fhir/Patient", headers=fresh).status_code == 200


def test_disabling_a_user_by_cli_ends_their_tokens(app, client, runner):
    with app.app_context():
        user, password = make_user("pharmacist")
        email = user.email
    headers = auth_headers(client, app, email, password, "pharmacist")
    result = runner.invoke(cli, args=["users", "disable", email])
    assert result.exit_code == 0, result.output
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    again = client.post("/auth/token", json={"username": email, "password": password})
    assert again.status_code == 401


def test_a_password_change_ends_every_older_token(app, client):
    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    old = auth_headers(client, app, email, password, "doctor")
    other_device = auth_headers(client, app, email, password, "doctor")
    with app.app_context():
        user = db.session.get(User, user.id)
        new_token = accounts.change_password(db.session, services(), actor_for(user),
                                             current=password, new="a-brand-new-password-7")
    for headers in (old, other_device):
        assert client.get("/fhir/Patient", headers=headers).status_code == 401
    assert client.get("/fhir/Patient", headers={
        "Authorization": f"Bearer {new_token}"}).status_code == 200


def test_disable_then_enable_and_a_role_round_trip_end_older_tokens(app, client):
    with app.app_context():
        user, password = make_user("pharmacist")
        admin = make_user("admin")[0]
        ids = (user.id, user.email, admin.id)
    headers = auth_headers(client, app, ids[1], password, "pharmacist")
    with app.app_context():
        admin = actor_for(db.session.get(User, ids[2]))
        accounts.set_active(db.session, services(), admin, ids[0], False)
        accounts.set_active(db.session, services(), admin, ids[0], True)
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    headers = auth_headers(client, app, ids[1], password, "pharmacist")
    with app.app_context():
        accounts.change_role(db.session, services(), admin, ids[0], "doctor")
        accounts.change_role(db.session, services(), admin, ids[0], "pharmacist")
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    assert client.get("/fhir/Patient", headers=auth_headers(
        client, app, ids[1], password, "pharmacist")).status_code == 200


def test_a_token_without_the_security_stamp_is_refused(app, client):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    with app.app_context():
        user = make_user("doctor")[0]
        token = create_access_token(identity=user.id, additional_claims={"role": "doctor"},
                                    expires_delta=timedelta(minutes=5))
    assert client.get("/fhir/Patient", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401
