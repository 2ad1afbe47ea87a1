"""TOTP authenticators: enrolment by the CLI, one use per time-step, no replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import time_machine

from csss_fhir.cli import cli
from csss_fhir.models import TotpCredential, db
from csss_fhir.security import totp
from tests.factories import TEST_SECRET, make_user

START = datetime(2026, 11, 26, 9, 0, 5, tzinfo=UTC)


def _enrol_by_cli(app, runner) -> tuple[str, str, pyotp.TOTP]:
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    result = runner.invoke(cli, args=["users", "totp-enrol", email])
    assert result.exit_code == 0, result.output
    uri = result.stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/")
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    return email, password, pyotp.TOTP(secret)


def test_enrolment_stores_the_secret_encrypted(app, runner):
    email, _, authenticator = _enrol_by_cli(app, runner)
    with app.app_context():
        stored = db.session.query(TotpCredential).one()
        assert authenticator.secret not in stored.secret_encrypted


def test_enrolment_is_for_admins_only(app, runner):
    with app.app_context():
        email = make_user("doctor")[0].email
    result = runner.invoke(cli, args=["users", "totp-enrol", email])
    assert result.exit_code != 0 and "admins" in result.output


def test_admin_signs_in_with_a_totp_code_once(app, client, runner):
    email, password, authenticator = _enrol_by_cli(app, runner)
    with time_machine.travel(START, tick=False):
        code = authenticator.at(START)
        body = {"username": email, "password": password, "otp": code}
        assert client.post("/auth/token", json=body).status_code == 200
        replay = client.post("/auth/token", json=body)
        assert replay.status_code == 401
        assert replay.get_json()["issue"][0]["details"]["text"] == "otp-invalid"


def test_an_earlier_step_is_refused_after_a_later_one_was_used(session):
    user, _ = make_user("admin")
    uri = totp.enrol(session, user, secret_key=TEST_SECRET, issuer="Test")
    session.commit()
    authenticator = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    now = START
    previous = authenticator.at(now - timedelta(seconds=30))
    current = authenticator.at(now)
    assert totp.verify(session, user, current, secret_key=TEST_SECRET, now=now)
    assert not totp.verify(session, user, previous, secret_key=TEST_SECRET, now=now)
    assert not totp.verify(session, user, current, secret_key=TEST_SECRET, now=now)
    later = now + timedelta(seconds=30)
    assert totp.verify(session, user, authenticator.at(later), secret_key=TEST_SECRET, now=later)


def test_codes_outside_the_window_are_refused(session):
    user, _ = make_user("admin")
    uri = totp.enrol(session, user, secret_key=TEST_SECRET, issuer="Test")
    authenticator = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    stale = authenticator.at(START - timedelta(minutes=2))
    assert not totp.verify(session, user, stale, secret_key=TEST_SECRET, now=START)


def test_a_changed_secret_key_refuses_instead_of_failing(session):
    user, _ = make_user("admin")
    uri = totp.enrol(session, user, secret_key=TEST_SECRET, issuer="Test")
    authenticator = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    assert not totp.verify(session, user, authenticator.at(START), secret_key="another-key",
                           now=START)
