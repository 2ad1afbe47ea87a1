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
