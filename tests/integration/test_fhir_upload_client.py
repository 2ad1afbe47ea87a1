"""FHIR-native upload through an independent client (fhirpy) against the running server:
$upload with a Parameters body, and POST Binary then $upload by reference (issue 16
item 5); the OperationDefinitions fhirpy finds at the statement's URLs."""

from __future__ import annotations

import base64

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from csss_fhir.models import db
from csss_fhir.security import clients
from tests.factories import login, make_login, make_user, parse_fhir, xray_jpeg, xray_png


def client_for(live, role: str) -> SyncFHIRClient:
    headers = login(live, make_login(live.app, role))
    return SyncFHIRClient(f"{live.url}/fhir", authorization=headers["Authorization"])


def system_client(live) -> SyncFHIRClient:
    """A hospital system (client_credentials) that may upload scans."""
    with live.app.app_context():
        new = clients.create_client(db.session, "ris", "system/ImagingStudy.write "
                                                       "system/ImagingStudy.read")
    token = requests.post(f"{live.url}/auth/token", data={
        "grant_type": "client_credentials", "client_id": new.client_id,
        "client_secret": new.client_secret}, timeout=10).json()["access_token"]
    return SyncFHIRClient(f"{live.url}/fhir", authorization=f"Bearer {token}")


def attachment(data: bytes, content_type: str) -> dict:
    return {"name": "file", "valueAttachment": {
        "contentType": content_type, "title": "chest", "data": base64.b64encode(data).decode()}}


def test_fhirpy_uploads_parameters_and_reads_the_study_back(live_server):
    with live_server.app.app_context():
        patient_id = make_user("patient")[0].patient_id
    admin = system_client(live_server)
    created = admin.execute("ImagingStudy/$upload", method="post", data={
        "resourceType": "Parameters", "parameter": [
            attachment(xray_png(), "image/png"),
            {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
            {"name": "modality", "valueString": "CR"},
            {"name": "description", "valueString": "PA chest"}]})
    study = parse_fhir(created, "ImagingStudy")
    read = admin.reference("ImagingStudy", study.id).to_resource()
    assert parse_fhir(read.serialize(), "ImagingStudy").description == "PA chest"
    assert read["subject"]["reference"] == f"Patient/{patient_id}"
    assert read["modality"][0]["code"] == "CR"

    with pytest.raises(OperationOutcome) as refused:  # 415: fhirpy raises the outcome
        admin.execute("ImagingStudy/$upload", method="post", data={
            "resourceType": "Parameters", "parameter": [attachment(b"GIF89a", "image/gif")]})
    assert "image/gif" in str(refused.value)


def test_fhirpy_posts_a_binary_and_uploads_it_by_reference_once(live_server):
    with live_server.app.app_context():
        patient_id = make_user("patient")[0].patient_id
    admin = system_client(live_server)
    binary = admin.resource("Binary", contentType="image/jpeg",
                            data=base64.b64encode(xray_jpeg()).decode())
    binary.save()
    assert binary.id and parse_fhir(binary.serialize(), "Binary").contentType == "image/jpeg"
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "file", "valueReference": {"reference": f"Binary/{binary.id}"}},
        {"name": "patient", "valueString": patient_id}]}
    study = parse_fhir(admin.execute("ImagingStudy/$upload", method="post", data=body),
                       "ImagingStudy")
    assert admin.reference("ImagingStudy", study.id).to_resource()["status"] == "registered"
    with pytest.raises(ResourceNotFound):  # consumed: 404 the second time
        admin.execute("ImagingStudy/$upload", method="post", data=body)


def test_fhirpy_finds_each_operation_definition_the_statement_names(live_server):
    doctor = client_for(live_server, "doctor")
    statement = doctor.execute("metadata", method="get")
    for resource in statement["rest"][0]["resource"]:
        for operation in resource.get("operation", []):
            definition_id = operation["definition"].rsplit("/", 1)[-1]
            definition = doctor.reference("OperationDefinition", definition_id).to_resource()
            assert definition["url"] == operation["definition"]
            parse_fhir(definition.serialize(), "OperationDefinition")
