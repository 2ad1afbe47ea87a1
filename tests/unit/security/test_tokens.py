"""Tokens stop working on logout (the deny-list) and when the user is disabled."""

from __future__ import annotations

from csss_fhir.cli import cli
from csss_fhir.models import RevokedToken, db
from tests.factories import auth_headers, make_user


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
