"""Lockout with back-off after repeated password or one-time-code failures (time frozen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from csss_fhir.models import AuditRecord, db
from tests.factories import latest_code, make_user, parse_fhir

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _admin(app):
    with app.app_context():
        user, password = make_user("admin")
        return user.email, password


def test_sixth_wrong_code_locks_and_the_lock_lifts_after_its_time(client, app):
    email, password = _admin(app)
    with time_machine.travel(START, tick=False) as clock:
        assert client.post("/auth/otp", json={"username": email, "password": password}
                           ).status_code == 202
        code = latest_code(app, email)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(5):
            response = client.post("/auth/token", json={"username": email,
                                                        "password": password, "otp": wrong})
            assert response.status_code == 401
            assert response.get_json()["issue"][0]["details"]["text"] == "otp-invalid"
        locked = client.post("/auth/token", json={"username": email, "password": password,
                                                  "otp": wrong})
        assert locked.status_code == 429
        parse_fhir(locked.data, "OperationOutcome")
        assert int(locked.headers["Retry-After"]) == 15 * 60
        # Locked: the right password and the right code still fail, and say when to retry.
        again = client.post("/auth/token", json={"username": email, "password": password,
                                                 "otp": code})
        assert again.status_code == 429
        assert 0 < int(again.headers["Retry-After"]) <= 15 * 60

        clock.shift(timedelta(minutes=15, seconds=1))
        assert client.post("/auth/otp", json={"username": email, "password": password}
                           ).status_code == 202
        opened = client.post("/auth/token", json={"username": email, "password": password,
                                                  "otp": latest_code(app, email)})
        assert opened.status_code == 200, opened.get_data(as_text=True)


def test_a_second_lock_lasts_twice_as_long(client, app):
    email, password = _admin(app)
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(6):
            client.post("/auth/token", json={"username": email, "password": "wrong-password-1"})
        clock.shift(timedelta(minutes=16))
        for _ in range(5):
            assert client.post("/auth/token", json={"username": email,
                                                    "password": "wrong-password-1"}
                               ).status_code == 401
        second = client.post("/auth/token", json={"username": email,
                                                  "password": "wrong-password-1"})
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) == 30 * 60


def test_wrong_passwords_lock_unknown_and_known_accounts_alike(client, app):
    email, password = _admin(app)
    answers = {}
    for username in (email, "nobody-here@test.local"):
        statuses = [client.post("/auth/token", json={"username": username,
                                                     "password": "wrong-password-1"})
                    for _ in range(6)]
        answers[username] = [(r.status_code, r.get_json()) for r in statuses]
    assert answers[email] == answers["nobody-here@test.local"]
    assert answers[email][-1][0] == 429
    assert client.post("/auth/token", json={"username": email, "password": password}
                       ).status_code == 429


def test_success_resets_the_count(client, app):
    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    for _ in range(2):
        for _ in range(5):
            client.post("/auth/token", json={"username": email, "password": "wrong-password-1"})
        assert client.post("/auth/token", json={"username": email, "password": password}
                           ).status_code == 200


def test_failures_and_the_lock_are_audited_without_secrets(client, app):
    email, password = _admin(app)
    for _ in range(6):
        client.post("/auth/token", json={"username": email, "password": "wrong-password-1"})
    with app.app_context():
        rows = db.session.query(AuditRecord).filter(AuditRecord.type_code == "110114").all()
        outcomes = [(r.subtype_code, r.outcome) for r in rows]
        assert outcomes.count(("110122", "4")) == 6
        assert ("account-locked", "4") in outcomes
        text = " ".join(str(vars(r)) for r in rows)
    assert "wrong-password-1" not in text and email not in text


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_a_locked_out_address_does_not_lock_the_owner_out_elsewhere(client, app):
    """NIST SP 800-63B 5.2.2: throttle the source; the owner at another address signs in."""
    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    for _ in range(6):
        client.post("/auth/token", json={"username": email, "password": "wrong-password-1"},
                    **_from("203.0.113.9"))
    assert client.post("/auth/token", json={"username": email, "password": password},
                       **_from("203.0.113.9")).status_code == 429
    assert client.post("/auth/token", json={"username": email, "password": password},
                       **_from("198.51.100.7")).status_code == 200


def test_an_account_under_attack_from_many_addresses_only_slows_down(client, app):
    from csss_fhir.security.lockout import ACCOUNT_SLOWDOWN_AFTER, MAX_SLOWDOWN

    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    with time_machine.travel(START, tick=False) as clock:
        for n in range(ACCOUNT_SLOWDOWN_AFTER + 1):
            clock.shift(timedelta(seconds=4))  # below the per-account request rate limit
            response = client.post("/auth/token", json={
                "username": email, "password": "wrong-password-1"}, **_from(f"10.0.{n}.1"))
            assert response.status_code == 401
        slowed = client.post("/auth/token", json={"username": email, "password": password},
                             **_from("198.51.100.7"))
        assert slowed.status_code == 429
        assert int(slowed.headers["Retry-After"]) <= MAX_SLOWDOWN.total_seconds()
        clock.shift(timedelta(seconds=int(slowed.headers["Retry-After"]) + 1))
        assert client.post("/auth/token", json={"username": email, "password": password},
                           **_from("198.51.100.7")).status_code == 200


def test_no_more_codes_are_evaluated_than_allowed_even_when_counted_first(app):
    """Each attempt is counted before it is checked: an attempt past the allowance is
    refused without being evaluated (parallel requests get distinct numbers)."""
    import pytest

    from csss_fhir.models import AuthThrottle
    from csss_fhir.security import lockout
    from csss_fhir.security.errors import TooManyAttemptsError

    policy = lockout.Policy(failures=5, minutes=15)
    keys = lockout.keys_for("k", "someone@test.local", "192.0.2.1")
    with app.app_context():
        # Seven requests that all passed `check` before any of them failed.
        outcomes = []
        for _ in range(7):
            try:
                lockout.begin_attempt(db.session, keys, policy)
                outcomes.append("evaluated")
            except TooManyAttemptsError:
                outcomes.append("refused")
        db.session.commit()
        assert outcomes == ["evaluated"] * 6 + ["refused"]
        assert db.session.get(AuthThrottle, keys.source).failures == 7
        with pytest.raises(TooManyAttemptsError):
            lockout.record_failure(db.session, keys, policy)


def test_the_password_change_form_is_throttled(app, client):
    from tests.unit.web.conftest import Browser

    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
    browser = Browser(app, client)
    browser.sign_in(email, password, "doctor")
    form = {"current_password": "wrong-password-x", "new_password": "another-password-22",
            "confirm_password": "another-password-22"}
    statuses = [browser.post("/account/password", form).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]
    form["current_password"] = password
    assert browser.post("/account/password", form).status_code == 429
