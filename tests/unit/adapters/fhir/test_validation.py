from __future__ import annotations

import pytest
from fhir.resources.R4B.patient import Patient

from adapters.fhir.patient import from_fhir_patient
from adapters.fhir.validation import model_class, parse_resource, validate_for_create
from csss_fhir.errors import InvalidInputError, ResourceValidationError
from tests.factories import emitted


def test_model_class_finds_the_r4b_model():
    assert model_class("Patient") is Patient
    assert model_class("MedicationRequest").__name__ == "MedicationRequest"


def test_parse_resource_returns_the_model():
    patient = parse_resource({"resourceType": "Patient", "gender": "male"}, "Patient")
    assert isinstance(patient, Patient) and patient.gender == "male"


def test_parse_resource_names_the_expected_and_found_types():
    with pytest.raises(ResourceValidationError,
                       match="resourceType is 'Observation'; this endpoint expects 'Patient'"):
        parse_resource({"resourceType": "Observation"}, "Patient")
    with pytest.raises(ResourceValidationError, match="resourceType is None"):
        parse_resource({"name": []}, "Patient")


def test_parse_resource_names_the_invalid_element():
    with pytest.raises(ResourceValidationError,
                       match=r"Patient is not valid FHIR R4: .*birthDate"):
        parse_resource({"resourceType": "Patient", "birthDate": "not a date"}, "Patient")


def test_parse_resource_refuses_a_body_that_is_no_object():
    with pytest.raises(InvalidInputError, match="must be a JSON object"):
        parse_resource("Patient", "Patient")


def issue(outcome) -> dict:
    [only] = emitted(outcome, "OperationOutcome")["issue"]
    return only


def test_validate_accepts_a_valid_resource_bare_or_in_parameters():
    patient = {"resourceType": "Patient", "name": [{"family": "Mensah"}]}
    for body in (patient, {"resourceType": "Parameters",
                           "parameter": [{"name": "resource", "resource": patient}]}):
        found = issue(validate_for_create(body, "Patient", from_fhir_patient))
        assert (found["severity"], found["code"]) == ("information", "informational")


def test_validate_reports_what_create_would_refuse_as_an_error_issue():
    found = issue(validate_for_create({"resourceType": "Patient"}, "Patient", from_fhir_patient))
    assert (found["severity"], found["code"]) == ("error", "invalid")
    assert "Patient.name is required" in found["diagnostics"]


def test_validate_refuses_parameters_without_a_resource():
    with pytest.raises(InvalidInputError, match="'resource' parameter"):
        validate_for_create({"resourceType": "Parameters", "parameter": [{"name": "mode"}]},
                            "Patient", from_fhir_patient)
