"""Hospital system clients: registration, client_credentials, SMART scopes on every route."""

from __future__ import annotations

import base64
import io
import uuid

import pytest

from csss_fhir.cli import cli
from csss_fhir.models import ApiClient, db
from tests.factories import make_scan, parse_fhir, xray_png


def _register(runner, name: str, scopes: str) -> tuple[str, str]:
    result = runner.invoke(cli, args=["clients", "create", name, "--scopes", scopes])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    return lines["client_id"], lines["client_secret"]


def _token(client, client_id: str, secret: str, **extra) -> dict:
    response = client.post("/auth/token", data={"grant_type": "client_credentials",
                                                "client_id": client_id,
                                                "client_secret": secret, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _headers(client, runner, scopes: str) -> dict[str, str]:
    client_id, secret = _register(runner, f"system-{uuid.uuid4().hex[:12]}", scopes)
    token = _token(client, client_id, secret)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_secret_is_shown_once_and_stored_hashed(app, runner, client):
    client_id, secret = _register(runner, "RIS", "system/*.read")
    with app.app_context():
        stored = db.session.get(ApiClient, client_id)
        assert secret not in stored.secret_hash and stored.scopes == "system/*.read"
    body = _token(client, client_id, secret)
    assert body["scope"] == "system/*.read" and body["role"] == "system"


def test_basic_authentication_works_too(runner, client):
    client_id, secret = _register(runner, "PACS", "system/ImagingStudy.write")
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = client.post("/auth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200


@pytest.mark.parametrize("client_id, secret", [("no-such-id", "x"), (None, None)])
def test_wrong_client_credentials_get_401(runner, client, client_id, secret):
    real_id, _ = _register(runner, "EHR", "system/*.read")
    data = {"grant_type": "client_credentials"}
    if client_id:
        data.update(client_id=client_id, client_secret=secret)
    wrong = client.post("/auth/token", data=data)
    wrong_secret = client.post("/auth/token", data={**data, "client_id": real_id,
                                                    "client_secret": "guess"})
    assert wrong.status_code == wrong_secret.status_code == 401
    assert wrong.get_json() == wrong_secret.get_json()


def test_unknown_scopes_are_refused_at_registration(runner):
    result = runner.invoke(cli, args=["clients", "create", "Bad", "--scopes", "system/*.*"])
    assert result.exit_code != 0 and "unknown scope" in result.output


def test_a_read_client_reads_but_cannot_upload_or_create(app, client, runner):
    with app.app_context():
        scan_id, patient = make_scan("PENDING_AI")
        patient_id = patient.patient_id
    headers = _headers(client, runner, "system/*.read")
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 200
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    upload = client.post("/fhir/ImagingStudy/$upload", headers=headers,
                         data={"file": (io.BytesIO(xray_png()), "x.png"),
                               "patient": patient_id}, content_type="multipart/form-data")
    assert upload.status_code == 403
    parse_fhir(upload.data, "OperationOutcome")
    create = client.post("/fhir/Patient", headers=headers,
                         json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert create.status_code == 403
    assert client.get("/fhir/AuditEvent", headers=headers).status_code == 403


def test_a_write_client_uploads_but_cannot_read_or_take_clinical_steps(app, client, runner):
    with app.app_context():
        scan_id, patient = make_scan("PENDING_AI")
        patient_id = patient.patient_id
    headers = _headers(client, runner, "system/ImagingStudy.write")
    upload = client.post("/fhir/ImagingStudy/$upload", headers=headers,
                         data={"file": (io.BytesIO(xray_png()), "x.png"),
                               "patient": patient_id}, content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_data(as_text=True)
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 403
    assert client.post(f"/fhir/ImagingStudy/{scan_id}/$classify", headers=headers
                       ).status_code == 403


def test_a_token_asks_for_fewer_scopes(app, client, runner):
    with app.app_context():
        scan_id, _ = make_scan("PENDING_AI")
    client_id, secret = _register(runner, "Lab", "system/*.read system/Patient.write")
    body = _token(client, client_id, secret, scope="system/Patient.read")
    assert body["scope"] == "system/Patient.read"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 403
    create = client.post("/fhir/Patient", headers=headers,
                         json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert create.status_code == 403
    refused = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": "system/AuditEvent.read"})
    assert refused.status_code == 400


def test_a_disabled_client_loses_access_at_once(app, client, runner):
    client_id, secret = _register(runner, "Old EHR", "system/*.read")
    headers = {"Authorization": f"Bearer {_token(client, client_id, secret)['access_token']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    with app.app_context():
        db.session.get(ApiClient, client_id).active = False
        db.session.commit()
    assert client.get("/fhir/Patient", headers=headers).status_code == 401


def test_audit_scope_is_never_implied(app, client, runner):
    headers = _headers(client, runner, "system/AuditEvent.read")
    assert client.get("/fhir/AuditEvent", headers=headers).status_code == 200
    assert client.get("/fhir/Patient", headers=headers).status_code == 403


def test_smart_configuration_and_capability_name_the_token_endpoint(client):
    config = client.get("/.well-known/smart-configuration").get_json()
    assert config["token_endpoint"].endswith("/auth/token")
    assert "client_credentials" in config["grant_types_supported"]
    assert "system/*.read" in config["scopes_supported"]
    capability = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    security = capability.rest[0].security
    assert security.service[0].coding[0].code == "SMART-on-FHIR"
    assert security.extension[0].extension[0].valueUri == config["token_endpoint"]
