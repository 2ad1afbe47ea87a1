"""$approve needs an admin whose second factor is fresh, or an `otp` on the call; e-mailed
codes are single use and expire (time frozen, not slept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import time_machine

from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import second_factor_is_fresh, second_factor_time_left
from tests.factories import (
    TEST_JWT_SECRET,
    auth_headers,
    latest_code,
    make_scan,
    make_user,
    parameters,
    parse_fhir,
)

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _admin_login(client, app, email: str, password: str) -> str:
    assert client.post("/auth/otp", json={"username": email, "password": password}
                       ).status_code == 202
    code = latest_code(app, email)
    response = client.post("/auth/token", json={"username": email, "password": password,
                                                "otp": code})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def test_email_code_reuse_is_refused(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    client.post("/auth/otp", json={"username": email, "password": password})
    body = {"username": email, "password": password, "otp": latest_code(app, email)}
    assert client.post("/auth/token", json=body).status_code == 200
    reused = client.post("/auth/token", json=body)
    assert reused.status_code == 401
    assert reused.get_json()["issue"][0]["details"]["text"] == "otp-invalid"


def test_expired_email_code_is_refused(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    with time_machine.travel(START, tick=False) as clock:
        client.post("/auth/otp", json={"username": email, "password": password})
        code = latest_code(app, email)
        clock.shift(timedelta(minutes=10, seconds=1))
        expired = client.post("/auth/token", json={"username": email, "password": password,
                                                   "otp": code})
        assert expired.status_code == 401


def test_admin_login_without_code_says_otp_required(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    response = client.post("/auth/token", json={"username": email, "password": password})
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["details"]["text"] == "otp-required"


def test_token_carries_exp_iat_jti_and_the_otp_time(client, app):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    with time_machine.travel(START, tick=False):
        token = _admin_login(client, app, email, password)
        claims = jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"] and claims["otp_at"] == int(START.timestamp())


def test_doctor_token_cannot_approve(client, app, as_role):
    with app.app_context():
        scan_id, _ = make_scan("PHARMACIST_COMPLETED")
    response = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=as_role("doctor"))
    assert response.status_code == 403
    parse_fhir(response.data, "OperationOutcome")


def test_stale_admin_token_needs_a_fresh_code_to_approve(client, app):
    with app.app_context():
        scan_id, _ = make_scan("PHARMACIST_COMPLETED")
        user, password = make_user("admin")
        email = user.email
    with time_machine.travel(START, tick=False) as clock:
        token = _admin_login(client, app, email, password)
        headers = {"Authorization": f"Bearer {token}"}
        clock.shift(timedelta(minutes=10, seconds=1))
        stale = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=headers)
        assert stale.status_code == 401
        assert parse_fhir(stale.data, "OperationOutcome").issue[0].details.text == \
            "otp-required"
        wrong = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=headers,
                            json=parameters(otp="000000"))
        assert wrong.status_code == 401
        client.post("/auth/otp", json={"username": email, "password": password})
        fresh = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=headers,
                            json=parameters(otp=latest_code(app, email)))
        assert fresh.status_code == 201, fresh.get_data(as_text=True)
        parse_fhir(fresh.data, "DiagnosticReport")


def test_fresh_admin_token_approves_without_a_code(client, app):
    with app.app_context():
        scan_id, _ = make_scan("PHARMACIST_COMPLETED")
        user, password = make_user("admin")
        email = user.email
    headers = auth_headers(client, app, email, password, "admin")
    response = client.post(f"/fhir/ImagingStudy/{scan_id}/$approve", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)


def test_second_factor_is_fresh_up_to_the_step_up_window_inclusive():
    actor = Actor(role="admin", user_id="u1", otp_verified_at=START)
    assert second_factor_is_fresh(actor, minutes=10, now=START + timedelta(minutes=10))
    assert not second_factor_is_fresh(actor, minutes=10,
                                      now=START + timedelta(minutes=10, seconds=1))
    assert not second_factor_is_fresh(Actor(role="admin", user_id="u1"), minutes=10, now=START)


def test_time_left_counts_down_the_same_window_and_stops_at_zero():
    actor = Actor(role="admin", user_id="u1", otp_verified_at=START)
    assert second_factor_time_left(actor, minutes=10, now=START + timedelta(minutes=3)) == \
        timedelta(minutes=7)
    assert second_factor_time_left(actor, minutes=10, now=START + timedelta(minutes=10)) == \
        timedelta(0)
    assert second_factor_time_left(actor, minutes=10, now=START + timedelta(hours=1)) == \
        timedelta(0)
    assert second_factor_time_left(Actor(role="admin", user_id="u1"), minutes=10,
                                   now=START) == timedelta(0)
