"""$validate (csss_fhir/api/fhir.py): an OperationOutcome that says valid or why not."""

from __future__ import annotations

import pytest

from tests.factories import medication_request, parse_fhir


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
