"""FHIR search semantics (csss_fhir/search.py) through the REST API, plus $validate."""

from __future__ import annotations

import pytest

from tests.factories import make_scan, make_user, medication_request, parse_fhir


def new_patient(client, headers, **fields):
    body = {"resourceType": "Patient", "name": [{"family": fields.get("family", "Doe"),
                                                 "given": [fields.get("given", "Jane")]}],
            "birthDate": fields.get("birth", "1980-05-17"),
            "identifier": [{"system": "urn:test:mrn", "value": fields.get("mrn", "M1")}]}
    response = client.post("/fhir/Patient", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def total(client, headers, query: str) -> int:
    response = client.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse_fhir(response.data, "Bundle").total


def test_string_token_and_date_semantics(client, as_role):
    admin = as_role("admin")
    new_patient(client, admin, family="Smithson", given="Anna Maria", mrn="A1", birth="1970-01-02")
    new_patient(client, admin, family="Smith", given="Bob", mrn="B2", birth="1990-12-31")
    assert total(client, admin, "Patient?name=smith") == 2  # starts with, any case
    assert total(client, admin, "Patient?name:exact=Smith") == 1
    assert total(client, admin, "Patient?name:exact=smith") == 0  # exact is case-sensitive
    assert total(client, admin, "Patient?name:contains=ITHS") == 1
    assert total(client, admin, "Patient?given=maria") == 1  # any word of the name
    assert total(client, admin, "Patient?identifier=urn:test:mrn|A1") == 1
    assert total(client, admin, "Patient?identifier=urn:other|A1") == 0
    assert total(client, admin, "Patient?identifier=A1,B2") == 2  # comma is OR
    assert total(client, admin, "Patient?birthdate=1970") == 1
    assert total(client, admin, "Patient?birthdate=ge1980-01-01") == 1
    assert total(client, admin, "Patient?birthdate=lt1990-12") == 1
    assert total(client, admin, "Patient?birthdate=eb1990-12-31&birthdate=sa1969") == 1
    assert total(client, admin, "Patient?_summary=count") == 2
    counted = parse_fhir(client.get("/fhir/Patient?_summary=count", headers=admin).data)
    assert not counted.entry and counted.total == 2
    bad_date = client.get("/fhir/Patient?birthdate=yesterday", headers=admin)
    assert bad_date.status_code == 400


def test_unsupported_modifier_is_reported_or_refused_when_strict(client, as_role):
    admin = as_role("admin")
    lenient = parse_fhir(client.get("/fhir/Patient?birthdate:exact=1970", headers=admin).data)
    assert any(e.search.mode == "outcome" for e in lenient.entry or [])
    strict = client.get("/fhir/Patient?birthdate:exact=1970",
                        headers={**admin, "Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_observation_codes_revinclude_and_sort(app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = as_role("doctor")
    assert total(client, doctor, "Observation?code=http://dicom.nema.org/resources/ontology/"
                                 "DCM|121071") == 2
    assert total(client, doctor, "Observation?code=http://loinc.org|121071") == 0
    assert total(client, doctor, "Observation?category=imaging") == 2
    assert total(client, doctor, "Observation?status:not=final") == 1
    assert total(client, doctor, f"Observation?derived-from=ImagingStudy/{scan_id}") == 2
    observations = parse_fhir(client.get("/fhir/Observation?_sort=_lastUpdated",
                                         headers=doctor).data)
    ai, verified = (e.resource for e in observations.entry)
    assert ai.status == "preliminary" and verified.status == "final"
    assert ai.meta.security[0].code == "AIAST"
    assert verified.meta.security[0].code == "CLINAST_AIRPT"
    finding = ai.valueCodeableConcept.coding[-1].code
    assert total(client, doctor, f"Observation?value-concept={finding}") >= 1
    study = parse_fhir(client.get(
        f"/fhir/ImagingStudy?_id={scan_id}&_revinclude=Observation:derived-from"
        "&_revinclude=Provenance:target", headers=doctor).data)
    included = sorted(e.resource.get_resource_type() for e in study.entry
                      if e.search.mode == "include")
    assert included == ["Observation", "Observation", "Provenance"]  # + the upload's
    result = parse_fhir(client.get(f"/fhir/Observation?_id={verified.id}"
                                   "&_revinclude=Provenance:target", headers=doctor).data)
    provenance = next(e.resource for e in result.entry
                      if e.resource.get_resource_type() == "Provenance")
    kinds = {a.type.coding[0].code: a.who.reference for a in provenance.agent}
    assert kinds["verifier"].startswith("Practitioner/")
    assert kinds["author"] == f"Device/{ai.device.reference.split('/')[1]}"
    assert {e.what.reference for e in provenance.entity} >= {f"Observation/{ai.id}"}


def test_patient_includes_never_show_what_a_patient_may_not_read(app, client, as_role):
    with app.app_context():
        patient, password = make_user("patient")
        email = patient.email
        scan_id, _ = make_scan("REPORT_READY", patient=patient)
    from tests.factories import auth_headers

    headers = auth_headers(client, app, email, password, "patient")
    bundle = parse_fhir(client.get("/fhir/DiagnosticReport?_include=DiagnosticReport:result",
                                   headers=headers).data)
    assert [e.resource.get_resource_type() for e in bundle.entry] == ["DiagnosticReport"]
    assert bundle.entry[0].resource.meta.security[0].code == "CLINAST_AIRPT"
    studies = parse_fhir(client.get(f"/fhir/ImagingStudy?_id={scan_id}"
                                    "&_include=ImagingStudy:patient", headers=headers).data)
    assert {e.resource.get_resource_type() for e in studies.entry} == {"ImagingStudy", "Patient"}


@pytest.mark.parametrize("body, severity", [
    ({"resourceType": "Patient", "name": [{"family": "Ok"}]}, "information"),
    ({"resourceType": "Patient", "gender": "robot", "name": [{"family": "X"}]}, "error"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient"}}]}, "error"),
])
def test_validate_patient_answers_with_an_outcome(client, as_role, body, severity):
    response = client.post("/fhir/Patient/$validate", json=body, headers=as_role("doctor"))
    assert response.status_code == 200
    assert parse_fhir(response.data, "OperationOutcome").issue[0].severity == severity


def test_validate_medication_request_and_refuse_other_types(client, as_role):
    headers = as_role("pharmacist")
    good = client.post("/fhir/MedicationRequest/$validate",
                       json=medication_request("p1", "s1"), headers=headers)
    assert parse_fhir(good.data, "OperationOutcome").issue[0].severity == "information"
    assert client.post("/fhir/Task/$validate", json={"resourceType": "Task"},
                       headers=headers).status_code == 400


def test_capability_statement_lists_exactly_the_search_parameters(client):
    from csss_fhir import search

    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    listed = {r.type: {p.name: p.type for p in r.searchParam or []}
              for r in statement.rest[0].resource}
    for resource_type, params in search.parameter_types().items():
        assert listed[resource_type] == params
    patient = next(r for r in statement.rest[0].resource if r.type == "Patient")
    assert [o.name for o in patient.operation] == ["validate"]
    assert "ImagingStudy:patient" in patient.searchRevInclude
