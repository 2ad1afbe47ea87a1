"""Creates keep what the client sent (issue 16 item 1): read back element by element, or a
422 OperationOutcome that names the element."""

from __future__ import annotations

import copy

import pytest

from tests.factories import make_scan, medication_request, parse_fhir

FULL_PATIENT = {
    "resourceType": "Patient",
    "active": False,
    "identifier": [
        {"use": "official", "system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "123456782"},
        {"use": "secondary", "system": "urn:test:mrn", "value": "MRN-FID-1",
         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                              "code": "MR"}]}},
    ],
    "name": [
        {"use": "usual", "prefix": ["Dr."], "family": "Adébáyọ̀", "given": ["Mary Ann"],
         "suffix": ["PhD"], "period": {"start": "2001-01-01"}},
        {"use": "maiden", "family": "Okonjo", "given": ["Mary"]},
    ],
    "telecom": [
        {"system": "phone", "value": "+234 1 555 0100", "use": "mobile", "rank": 1},
        {"system": "email", "value": "mary@test.local", "use": "home"},
    ],
    "gender": "female",
    "birthDate": "1975-06-30",
    "address": [{"use": "home", "type": "both", "line": ["12 Marina Rd"], "city": "Lagos",
                 "postalCode": "100001", "country": "NG"}],
    "maritalStatus": {"coding": [{"system":
                                  "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                  "code": "M"}]},
}


def sent_is_kept(sent, served, path: str = "") -> None:
    """Every element sent is served with the same value (the server may add elements)."""
    if isinstance(sent, dict):
        assert isinstance(served, dict), path
        for key, value in sent.items():
            assert key in served, f"{path}.{key} was dropped"
            sent_is_kept(value, served[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(served, list) and len(served) == len(sent), path
        for index, (a, b) in enumerate(zip(sent, served, strict=True)):
            sent_is_kept(a, b, f"{path}[{index}]")
    else:
        assert served == sent, f"{path}: sent {sent!r}, served {served!r}"


def test_a_created_patient_is_read_back_element_by_element(client, as_role):
    headers = as_role("admin")
    created = client.post("/fhir/Patient", json=FULL_PATIENT, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    for served in (created.get_json(),
                   client.get(f"/fhir/Patient/{created.get_json()['id']}",
                              headers=headers).get_json()):
        parse_fhir(served, "Patient")
        sent_is_kept(FULL_PATIENT, served)
        assert served["active"] is False
    # The MR-typed identifier (stored as the MRN) finds the patient; active=false too.
    found = client.get("/fhir/Patient?identifier=urn:test:mrn|MRN-FID-1&active=false",
                       headers=headers).get_json()
    assert found["total"] == 1


def test_the_same_mrn_from_another_authority_is_another_patient(client, as_role):
    headers = as_role("admin")
    body = {"resourceType": "Patient", "name": [{"family": "Twin"}],
            "identifier": [{"system": "urn:hospital:a", "value": "M-1"}]}
    assert client.post("/fhir/Patient", json=body, headers=headers).status_code == 201
    again = client.post("/fhir/Patient", json=body, headers=headers)
    assert again.status_code == 409
    other = copy.deepcopy(body)
    other["identifier"][0]["system"] = "urn:hospital:b"
    assert client.post("/fhir/Patient", json=other, headers=headers).status_code == 201
    for system in ("urn:hospital:a", "urn:hospital:b"):
        found = client.get(f"/fhir/Patient?identifier={system}|M-1", headers=headers)
        assert found.get_json()["total"] == 1


@pytest.mark.parametrize(("change", "expression"), [
    (lambda b: b.update(gender="not-a-gender"), "Patient.gender"),
    (lambda b: b["telecom"][1].update(system="pigeon"), "Patient.telecom[1].system"),
    (lambda b: b["name"][1].update(use="stage"), "Patient.name[1].use"),
    (lambda b: b["address"][0].update(type="virtual"), "Patient.address[0].type"),
])
def test_a_code_outside_a_required_binding_is_a_422_naming_the_element(
        client, as_role, change, expression):
    body = copy.deepcopy(FULL_PATIENT)
    change(body)
    response = client.post("/fhir/Patient", json=body, headers=as_role("admin"))
    assert response.status_code == 422
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert outcome.issue[0].expression == [expression]


def full_medication_request(patient_id: str, study_id: str) -> dict:
    body = medication_request(patient_id, study_id)
    body.update({
        "status": "draft", "intent": "proposal", "priority": "urgent",
        "authoredOn": "2025-02-03T04:05:06+01:00",
        "identifier": [{"system": "urn:test:rx", "value": "RX-1"}],
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "233604007",
                                    "display": "Pneumonia"}]}],
    })
    dosage = body["dosageInstruction"][0]
    dosage["timing"]["repeat"] = {"frequency": 3, "period": 1, "periodUnit": "d",
                                  "boundsDuration": {"value": 7, "unit": "days",
                                                     "system": "http://unitsofmeasure.org",
                                                     "code": "d"}}
    dosage["doseAndRate"][0]["doseQuantity"].update(system="http://unitsofmeasure.org",
                                                    code="mg")
    return body


def test_a_created_medication_request_is_read_back_element_by_element(app, client, as_role):
    with app.app_context():
        study_id, patient = make_scan("DOCTOR_VERIFIED")
        patient_id = patient.patient_id
    headers = as_role("pharmacist")
    body = full_medication_request(patient_id, study_id)
    created = client.post("/fhir/MedicationRequest", json=body, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    read = client.get(f"/fhir/MedicationRequest/{created.get_json()['id']}", headers=headers)
    for served in (created.get_json(), read.get_json()):
        parse_fhir(served, "MedicationRequest")
        sent_is_kept(body, served)


@pytest.mark.parametrize(("field", "value", "status"), [
    ("status", "not-a-status", 422), ("intent", "wish", 422), ("priority", "whenever", 422),
    ("status", "completed", 422),
])
def test_a_medication_request_status_outside_what_create_takes_is_refused(
        app, client, as_role, field, value, status):
    with app.app_context():
        study_id, patient = make_scan("DOCTOR_VERIFIED")
        patient_id = patient.patient_id
    body = full_medication_request(patient_id, study_id)
    body[field] = value
    response = client.post("/fhir/MedicationRequest", json=body, headers=as_role("pharmacist"))
    assert response.status_code == status
    assert parse_fhir(response.data, "OperationOutcome").issue[0].expression == \
        [f"MedicationRequest.{field}"]
