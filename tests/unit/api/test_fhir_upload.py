"""FHIR-native upload (issue 16 item 5): $upload with a Parameters body holding an
Attachment, and POST /fhir/Binary then $upload naming `Binary/<id>`."""

from __future__ import annotations

import base64
import io
import uuid

import pytest

from csss_fhir.cli import cli
from csss_fhir.models import Scan, StagedBinary, db
from tests.factories import parse_fhir, xray_jpeg, xray_png

FHIR = "application/fhir+json"
UPLOAD = "/fhir/ImagingStudy/$upload"


def upload_body(data: bytes | None = None, content_type: str = "image/png", *,
                encoded: str | None = None, reference: str | None = None,
                **fields: str) -> dict:
    if reference:
        file = {"name": "file", "valueReference": {"reference": reference}}
    else:
        file = {"name": "file", "valueAttachment": {
            "contentType": content_type, "title": "chest.png",
            "data": encoded if encoded is not None else base64.b64encode(data).decode()}}
    parameters = [file]
    for name, value in fields.items():
        if name == "patient":
            parameters.append({"name": "patient", "valueReference": {"reference": value}})
        else:
            parameters.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": parameters}


def post_json(client, path: str, body: dict, headers: dict):
    return client.post(path, json=body, headers={**headers, "Content-Type": FHIR})


def system_headers(client, runner, scopes: str) -> dict[str, str]:
    result = runner.invoke(cli, args=["clients", "create", f"ris-{uuid.uuid4().hex[:8]}",
                                      "--scopes", scopes])
    assert result.exit_code == 0, result.output
    ids = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    token = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": ids["client_id"],
        "client_secret": ids["client_secret"]}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_parameters_upload_makes_the_same_study_as_multipart(app, client, as_role):
    headers = as_role("patient")
    response = post_json(client, UPLOAD, upload_body(
        xray_png(), modality="CR", bodySite="Chest PA", description="follow-up"), headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    study = parse_fhir(response.data, "ImagingStudy")
    assert study.status == "registered"
    assert response.headers["Location"].endswith(f"/ImagingStudy/{study.id}/_history/1")
    assert study.modality[0].code == "CR"
    assert study.description == "follow-up"
    with app.app_context():
        scan = db.session.get(Scan, study.id)
        assert (scan.source_format, scan.body_site) == ("png", "Chest PA")


def test_admin_names_the_patient_by_reference_or_by_id(client, as_role, new_user):
    headers = as_role("admin")
    patient_id = new_user("patient").patient_id
    by_reference = post_json(client, UPLOAD, upload_body(
        xray_jpeg(), "image/jpeg", patient=f"Patient/{patient_id}"), headers)
    assert by_reference.status_code == 201, by_reference.get_data(as_text=True)
    body = upload_body(xray_png(seed=3))
    body["parameter"].append({"name": "patient", "valueString": patient_id})
    by_id = post_json(client, UPLOAD, body, headers)
    assert by_id.status_code == 201, by_id.get_data(as_text=True)
    for response in (by_reference, by_id):
        study = parse_fhir(response.data, "ImagingStudy")
        assert study.subject.reference == f"Patient/{patient_id}"


@pytest.mark.parametrize("body, status, words", [
    (upload_body(b"GIF89a", "image/gif"), 415, "image/gif"),
    (upload_body(encoded="not base64 at all!"), 400, "not valid base64"),
    (upload_body(encoded=""), 400, "no data"),
    ({"resourceType": "Parameters", "parameter": []}, 400, "exactly one 'file'"),
    ({"resourceType": "Patient"}, 400, "'Patient'"),
    (upload_body(reference="Patient/1"), 400, "Binary/<id>"),
])
def test_malformed_parameters_are_refused_and_store_nothing(app, client, as_role, body,
                                                             status, words):
    response = post_json(client, UPLOAD, body, as_role("patient"))
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in parse_fhir(response.data, "OperationOutcome").issue[0].diagnostics
    with app.app_context():
        assert db.session.query(Scan).count() == 0


def test_a_file_past_max_upload_mb_is_413_by_its_decoded_size(client, as_role):
    # MAX_UPLOAD_MB is 10 in the tests: 10 MiB + 1 byte decoded is too large, although
    # far more base64 characters than that are let through to be counted.
    too_large = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()
    response = post_json(client, UPLOAD, upload_body(encoded=too_large), as_role("patient"))
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert "decoded" in parse_fhir(response.data, "OperationOutcome").issue[0].diagnostics


def test_a_file_just_under_the_limit_is_not_refused_for_its_base64_length(client, as_role):
    # 9 MiB is 12 MiB of base64: past the multipart body limit, within the decoded limit.
    padded = xray_png() + b"\0" * (9 * 1024 * 1024)
    response = post_json(client, UPLOAD, upload_body(padded), as_role("patient"))
    assert response.status_code == 201, response.get_data(as_text=True)[:300]


def test_binary_then_upload_by_reference_consumes_the_binary(app, client, as_role,
                                                              new_user):
    headers = as_role("admin")
    patient_id = new_user("patient").patient_id
    posted = client.post("/fhir/Binary", data=xray_png(), headers={
        **headers, "Content-Type": "image/png"})
    assert posted.status_code == 201, posted.get_data(as_text=True)
    binary = parse_fhir(posted.data, "Binary")
    assert binary.contentType == "image/png" and binary.data is None
    assert posted.headers["Location"].endswith(f"/fhir/Binary/{binary.id}")
    body = upload_body(reference=f"Binary/{binary.id}", patient=f"Patient/{patient_id}")
    response = post_json(client, UPLOAD, body, headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    parse_fhir(response.data, "ImagingStudy")
    with app.app_context():
        assert db.session.get(StagedBinary, binary.id) is None
    again = post_json(client, UPLOAD, body, headers)
    assert again.status_code == 404, again.get_data(as_text=True)


def test_binary_as_fhir_json_from_a_system_client(app, client, runner, new_user):
    headers = system_headers(client, runner, "system/ImagingStudy.write")
    patient_id = new_user("patient").patient_id
    posted = post_json(client, "/fhir/Binary", {
        "resourceType": "Binary", "contentType": "image/jpeg",
        "data": base64.b64encode(xray_jpeg()).decode()}, headers)
    assert posted.status_code == 201, posted.get_data(as_text=True)
    binary = parse_fhir(posted.data, "Binary")
    response = post_json(client, UPLOAD, upload_body(
        reference=f"Binary/{binary.id}", patient=f"Patient/{patient_id}"), headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        scan = db.session.get(Scan, parse_fhir(response.data, "ImagingStudy").id)
        assert scan.uploaded_by_client is not None and scan.source_format == "jpeg"


def test_another_callers_binary_is_not_found_and_stays(app, client, as_role, new_user):
    posted = client.post("/fhir/Binary", data=xray_png(), headers={
        **as_role("admin"), "Content-Type": "image/png"})
    binary_id = posted.get_json()["id"]
    patient_id = new_user("patient").patient_id
    response = post_json(client, UPLOAD, upload_body(
        reference=f"Binary/{binary_id}", patient=f"Patient/{patient_id}"), as_role("admin"))
    assert response.status_code == 404, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(StagedBinary, binary_id) is not None


@pytest.mark.parametrize("role, content_type, data, status", [
    ("patient", "image/png", None, 403),   # patients send the file in $upload itself
    ("doctor", "image/png", None, 403),    # doctors do not upload scans
    ("admin", "text/plain", b"hello", 415),
    ("admin", "image/png", b"", 400),
])
def test_binary_refusals(client, as_role, role, content_type, data, status):
    response = client.post("/fhir/Binary", data=xray_png() if data is None else data,
                           headers={**as_role(role), "Content-Type": content_type})
    assert response.status_code == status, response.get_data(as_text=True)
    parse_fhir(response.data, "OperationOutcome")


def test_a_staged_binary_is_read_at_its_location_by_its_stager_only(client, as_role):
    headers = as_role("admin")
    image = xray_png()
    posted = client.post("/fhir/Binary", data=image, headers={
        **headers, "Content-Type": "image/png"})
    binary_id = posted.get_json()["id"]
    location = posted.headers["Location"].split("/fhir/", 1)[1]
    raw = client.get(f"/fhir/{location}", headers=headers)
    assert raw.status_code == 200 and raw.data == image and raw.mimetype == "image/png"
    resource = client.get(f"/fhir/{location}",
                          headers={**headers, "Accept": "application/fhir+json"})
    assert parse_fhir(resource.data, "Binary").id == binary_id
    for other in (as_role("patient"), as_role("admin")):
        assert client.get(f"/fhir/Binary/{binary_id}", headers=other).status_code == 404


def test_multipart_upload_still_works(client, as_role):
    response = client.post(UPLOAD, headers=as_role("patient"),
                           data={"file": (io.BytesIO(xray_png()), "chest.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
