"""/auth/token as OAuth clients expect it: RFC 6749 §5.2 errors and §3.3 scope grants, while
API.md's JSON password login keeps its OperationOutcomes."""

from __future__ import annotations

import base64

import pytest

from csss_fhir.cli import cli
from tests.factories import make_scan, make_user, parse_fhir


def _register(runner, name: str, scopes: str) -> tuple[str, str]:
    result = runner.invoke(cli, args=["clients", "create", name, "--scopes", scopes])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    return lines["client_id"], lines["client_secret"]


def _oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error and body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    return body


def test_wrong_client_secret_is_invalid_client_401(runner, client):
    client_id, _ = _register(runner, "EHR", "system/*.read")
    response = client.post("/auth/token", data={"grant_type": "client_credentials",
                                                "client_id": client_id,
                                                "client_secret": "guess"})
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_basic_credentials_are_invalid_client_401(runner, client):
    client_id, _ = _register(runner, "PACS", "system/*.read")
    basic = base64.b64encode(f"{client_id}:guess".encode()).decode()
    response = client.post("/auth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"})
    _oauth_error(response, 401, "invalid_client")


def test_unknown_grant_type_is_unsupported_grant_type(client):
    response = client.post("/auth/token", data={"grant_type": "urn:example:magic"})
    _oauth_error(response, 400, "unsupported_grant_type")


def test_no_scope_grantable_is_invalid_scope(runner, client):
    client_id, secret = _register(runner, "Lab", "system/Patient.read")
    response = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": "system/AuditEvent.read launch/patient"})
    _oauth_error(response, 400, "invalid_scope")


def test_form_password_grant_with_wrong_password_is_invalid_grant(app, client):
    with app.app_context():
        user, _ = make_user("doctor")
        email = user.email
    response = client.post("/auth/token", data={"grant_type": "password", "username": email,
                                                "password": "not-the-password"})
    _oauth_error(response, 400, "invalid_grant")


def test_json_password_login_keeps_its_operation_outcome(app, client):
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    response = client.post("/auth/token", json={"username": email, "password": password})
    assert response.status_code == 401
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert outcome.issue[0].details.text == "otp-required"


@pytest.mark.parametrize("requested, granted", [
    ("launch/patient system/Patient.rs", "system/Patient.rs"),
    ("system/*.rs openid fhirUser", "system/*.rs"),
    ("system/Patient.cruds", "system/Patient.cruds"),
])
def test_unknown_scopes_are_dropped_and_v2_scopes_granted(app, runner, client, requested,
                                                          granted):
    with app.app_context():
        scan_id, _ = make_scan("PENDING_AI")
    client_id, secret = _register(runner, f"EHR {len(requested)}",
                                  "system/*.read system/Patient.write")
    response = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": requested})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["scope"] == granted
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    study = client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code
    assert study == (200 if granted == "system/*.rs" else 403)
    create = client.post("/fhir/Patient", headers=headers,
                         json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert create.status_code == (201 if granted.endswith("cruds") else 403)
