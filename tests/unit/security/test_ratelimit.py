"""Flask-Limiter on /auth: per address and per account, 429 with Retry-After."""

from __future__ import annotations

import dataclasses

from csss_fhir import create_app
from tests.factories import parse_fhir


def test_per_account_limit_answers_429_with_retry_after(settings):
    app = create_app(dataclasses.replace(settings, auth_rate_limit_account="3 per minute"))
    client = app.test_client()
    body = {"username": "someone@test.local", "password": "wrong-password-1"}
    statuses = [client.post("/auth/token", json=body).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = client.post("/auth/token", json=body)
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    parse_fhir(limited.data, "OperationOutcome")
    # Another account from the same address is not held back by this one.
    other = client.post("/auth/token", json={**body, "username": "else@test.local"})
    assert other.status_code == 401


def test_per_address_limit_covers_every_account(settings):
    app = create_app(dataclasses.replace(settings, auth_rate_limit_address="4 per minute"))
    client = app.test_client()
    statuses = [client.post("/auth/otp", json={"username": f"u{i}@test.local",
                                               "password": "wrong-password-1"}).status_code
                for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]


def test_the_ui_sign_in_form_shares_the_account_budget(settings):
    import re

    app = create_app(dataclasses.replace(settings, auth_rate_limit_account="2 per minute"))
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = {"email": "someone@test.local", "password": "wrong-password-1", "csrf_token": csrf}
    statuses = [client.post("/login", data=body).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert client.post("/auth/token", json={"username": "someone@test.local",
                                            "password": "x"}).status_code == 429


def test_the_password_change_form_draws_on_the_address_budget(settings):
    from csss_fhir.extensions import services as current_services
    from tests.factories import make_user
    from tests.unit.web.conftest import Browser

    app = create_app(dataclasses.replace(settings, auth_rate_limit_address="3 per minute"))
    client = app.test_client()
    with app.app_context():
        user, password = make_user("doctor")
        email = user.email
        assert current_services().settings.auth_rate_limit_address == "3 per minute"
    Browser(app, client).sign_in(email, password, "doctor")  # one of the three
    browser = Browser(app, client)
    form = {"current_password": "wrong-password-x", "new_password": "another-password-22",
            "confirm_password": "another-password-22"}
    statuses = [browser.post("/account/password", form).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_unreachable_shared_storage_falls_back_to_counting_in_memory(settings):
    from tests.servers import free_port

    app = create_app(dataclasses.replace(
        settings, auth_rate_limit_address="2 per minute",
        ratelimit_storage_uri=f"redis://127.0.0.1:{free_port()}/0"))
    client = app.test_client()
    statuses = [client.post("/auth/token", json={"username": f"u{i}@test.local",
                                                 "password": "wrong-password-1"}).status_code
                for i in range(3)]
    assert statuses == [401, 401, 429]
