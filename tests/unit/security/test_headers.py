"""Hardening headers, CORS for configured origins only, no debug mode in production."""

from __future__ import annotations

import dataclasses

import pytest

from csss_fhir import create_app
from csss_fhir.errors import ConfigurationError
from tests.factories import parse_fhir


def test_every_answer_carries_the_hardening_headers(client):
    for path in ("/fhir/metadata", "/healthz", "/fhir/Patient", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in headers  # plain HTTP here


def test_hsts_over_https(client):
    response = client.get("/healthz", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_auth_answers_are_not_cached(client):
    response = client.post("/auth/token", json={"username": "x@test.local", "password": "y"})
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def cors_app(settings):
    return create_app(dataclasses.replace(settings, cors_origins=("https://ward.example",)))


def test_cors_only_for_configured_origins(cors_app):
    client = cors_app.test_client()
    allowed = client.get("/fhir/metadata", headers={"Origin": "https://ward.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ward.example"
    other = client.get("/fhir/metadata", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options("/fhir/Patient", headers={
        "Origin": "https://ward.example", "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://ward.example"


def test_production_refuses_debug_mode(settings):
    production = dataclasses.replace(settings, env="production",
                                     base_url="https://csss.test.example")
    app = create_app(production)
    with pytest.raises(ConfigurationError):
        app.debug = True
    assert app.debug is False


def test_no_debug_or_console_routes(app, client):
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    assert not [r for r in rules if "debug" in r or "console" in r]
    response = client.get("/fhir/console")
    assert response.status_code in (401, 404)
    parse_fhir(response.data, "OperationOutcome")


def test_a_client_error_never_shows_a_stack_trace(client):
    response = client.post("/auth/token", data=b"\xff\xfe", content_type="application/json")
    assert response.status_code in (400, 401)
    assert b"Traceback" not in response.data


def test_pages_and_resources_with_patient_data_are_not_cached(app, client, as_role):
    from tests.unit.web.conftest import Browser

    with app.app_context():
        from tests.factories import make_user

        user, password = make_user("doctor")
        email = user.email
    browser = Browser(app, client)
    browser.sign_in(email, password, "doctor")
    for path in ("/doctor", "/login", "/account/password"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    response = client.get("/fhir/Patient", headers=as_role("pharmacist"))
    assert response.headers["Cache-Control"] == "no-store"
