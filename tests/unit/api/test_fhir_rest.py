"""The FHIR REST core: capabilities, read, vread, search, create, and its errors."""

from __future__ import annotations

import io

import pytest

from tests.factories import held_jobs, parse_fhir, xray_png

FHIR = "application/fhir+json"


def new_patient(client, headers, mrn: str = "MRN-77", family: str = "Okafor") -> dict:
    body = {"resourceType": "Patient", "name": [{"family": family, "given": ["Chidi"]}],
            "gender": "male", "birthDate": "1980-02-29",
            "identifier": [{"system": "urn:test:mrn", "value": mrn}],
            "telecom": [{"system": "email", "value": f"{mrn.lower()}@test.local"}]}
    response = client.post("/fhir/Patient", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_metadata_is_a_capability_statement_without_auth(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.mimetype == FHIR
    statement = parse_fhir(response.data, "CapabilityStatement")
    types = {r.type for r in statement.rest[0].resource}
    assert {"Patient", "ImagingStudy", "Observation", "Task", "DiagnosticReport",
            "MedicationRequest", "Provenance", "Practitioner", "Binary"} <= types
    imaging = next(r for r in statement.rest[0].resource if r.type == "ImagingStudy")
    assert {o.name for o in imaging.operation} == {"upload", "classify", "verify",
                                                   "pharmacy-review", "approve",
                                                   "return-to-patient", "send-back",
                                                   "prioritize"}


def test_create_read_vread_patient_with_version_headers(client, as_role):
    headers = as_role("doctor")
    created = new_patient(client, headers)
    parse_fhir(created, "Patient")
    assert created["meta"]["versionId"] == "1"
    response = client.get(f"/fhir/Patient/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.get_json()["identifier"][0]["value"] == "MRN-77"
    vread = client.get(f"/fhir/Patient/{created['id']}/_history/1", headers=headers)
    assert vread.status_code == 200
    assert vread.get_json() == response.get_json()
    missing = client.get(f"/fhir/Patient/{created['id']}/_history/9", headers=headers)
    assert missing.status_code == 404


def test_search_by_identifier_pages_with_links(client, as_role):
    headers = as_role("admin")
    for n in range(5):
        new_patient(client, headers, mrn=f"MRN-P{n}", family=f"Family{n}")
    first = client.get("/fhir/Patient?_count=2&name=family", headers=headers)
    bundle = parse_fhir(first.data, "Bundle")
    assert bundle.type == "searchset" and bundle.total == 5 and len(bundle.entry) == 2
    links = {link.relation: link.url for link in bundle.link}
    assert "next" in links and "previous" not in links
    assert all(e.search.mode == "match" and e.fullUrl.endswith(e.resource.id)
               for e in bundle.entry)
    path = links["next"].split("/fhir/", 1)[1]
    second = parse_fhir(client.get(f"/fhir/{path}", headers=headers).data, "Bundle")
    assert {e.resource.id for e in second.entry}.isdisjoint({e.resource.id for e in bundle.entry})
    by_mrn = parse_fhir(client.get("/fhir/Patient?identifier=urn:test:mrn|MRN-P3",
                                   headers=headers).data)
    assert by_mrn.total == 1


def test_unknown_search_parameter_is_reported_or_refused_when_strict(client, as_role):
    headers = as_role("doctor")
    lenient = parse_fhir(client.get("/fhir/Patient?colour=blue", headers=headers).data)
    outcomes = [e for e in lenient.entry or [] if e.search.mode == "outcome"]
    assert outcomes and "colour" in outcomes[0].resource.issue[0].diagnostics
    strict = client.get("/fhir/Patient?colour=blue",
                        headers={**headers, "Prefer": "handling=strict"})
    assert strict.status_code == 400
    parse_fhir(strict.data, "OperationOutcome")


@pytest.mark.parametrize("path, status", [
    ("/fhir/Patient/does-not-exist", 404),
    ("/fhir/Spaceship/1", 404),
    ("/fhir/Patient?_count=abc", 400),
])
def test_errors_are_operation_outcomes(client, as_role, path, status):
    response = client.get(path, headers=as_role("doctor"))
    assert response.status_code == status
    assert response.mimetype == FHIR
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert outcome.issue[0].diagnostics


def test_no_token_is_401_outcome(client):
    response = client.get("/fhir/Patient")
    assert response.status_code == 401
    assert parse_fhir(response.data, "OperationOutcome").issue[0].code == "login"


def test_xml_is_406_and_wrong_method_405(client, as_role):
    headers = as_role("doctor")
    assert client.get("/fhir/Patient?_format=xml", headers=headers).status_code == 406
    xml_only = client.get("/fhir/Patient", headers={**headers, "Accept": "application/fhir+xml"})
    assert xml_only.status_code == 406
    parse_fhir(xml_only.data, "OperationOutcome")
    deleted = client.delete("/fhir/Patient/x", headers=headers)
    assert deleted.status_code == 405
    parse_fhir(deleted.data, "OperationOutcome")
    create_task = client.post("/fhir/Task", json={"resourceType": "Task"}, headers=headers)
    assert create_task.status_code == 405


def test_invalid_resource_is_422_and_wrong_media_type_415(client, as_role):
    headers = as_role("admin")
    bad = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "robot",
                                              "name": [{"family": "X"}]}, headers=headers)
    assert bad.status_code == 422
    parse_fhir(bad.data, "OperationOutcome")
    text = client.post("/fhir/Patient", data="hello", content_type="text/plain",
                       headers=headers)
    assert text.status_code == 415
    broken = client.post("/fhir/Patient", data="{not json", content_type=FHIR, headers=headers)
    assert broken.status_code == 400


def test_patient_sees_only_own_compartment(client, app, as_role):
    admin = as_role("admin")
    other = new_patient(client, admin, mrn="MRN-OTHER")
    patient_headers = as_role("patient")
    own = parse_fhir(client.get("/fhir/Patient", headers=patient_headers).data)
    assert own.total == 1 and own.entry[0].resource.id != other["id"]
    assert client.get(f"/fhir/Patient/{other['id']}",
                      headers=patient_headers).status_code == 404
    assert client.get("/fhir/Observation", headers=patient_headers).status_code == 403
    assert client.get("/fhir/MedicationRequest", headers=patient_headers).status_code == 403


def test_upload_returns_registered_imaging_study_and_task(app, client, as_role):
    headers = as_role("patient")
    with held_jobs(app) as queued:
        response = client.post("/fhir/ImagingStudy/$upload", headers=headers,
                               data={"file": (__import__("io").BytesIO(xray_png()),
                                              "chest.png")},
                               content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    study = parse_fhir(response.data, "ImagingStudy")
    assert study.status == "registered"
    assert response.headers["Location"].endswith(f"/ImagingStudy/{study.id}/_history/1")
    assert queued == [("classify_scan", study.id)]  # sent after the commit, not run yet

    def task_state() -> str:
        tasks = parse_fhir(client.get(f"/fhir/Task?focus=ImagingStudy/{study.id}",
                                      headers=headers).data)
        assert tasks.total == 1
        return tasks.entry[0].resource.businessStatus.text

    assert task_state() == "PENDING_AI"
    app.extensions["csss_jobs"].submit(*queued[0])  # the job, as a worker would run it
    assert task_state() == "AI_ANALYZED"


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/Patient/$validate", "/auth/token"])
def test_json_nested_100000_deep_is_a_400(client, as_role, path):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post(path, data=deep, headers={**as_role("doctor"),
                                                     "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("failure, status", [
    (OSError(28, "No space left on device"), 507),
    (OSError(30, "Read-only file system"), 503),
])
def test_a_full_or_read_only_disk_is_a_clear_outcome(app, client, as_role, monkeypatch,
                                                     failure, status):
    from csss_fhir.storage.base import BlobStore

    def refuse(self, data):
        raise failure

    monkeypatch.setattr(BlobStore, "put", refuse)
    response = client.post("/fhir/ImagingStudy/$upload", headers=as_role("patient"),
                           data={"file": (io.BytesIO(xray_png(64)), "chest.png")},
                           content_type="multipart/form-data")
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert "nothing was saved" in outcome.issue[0].diagnostics
    assert response.headers["Retry-After"] == "300"
