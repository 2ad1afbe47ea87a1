from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.fhir.medication_request import (
    PrescriptionData,
    dosage_summary,
    from_fhir_medication_request,
    to_fhir_medication_request,
)
from csss_fhir.errors import ResourceValidationError
from tests.factories import emitted, medication_request, row

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_from_fhir_takes_the_references_medication_and_dosage():
    body = medication_request("pat-1", "scan-1")
    parsed = from_fhir_medication_request(body)
    assert parsed == PrescriptionData(
        patient_id="pat-1", scan_id="scan-1", medication="Amoxicillin", medication_code=None,
        dose="500 mg", route="oral", frequency="three times a day", duration="7 days",
        dosage_text=None, note="Take with food",
        dosage_instruction=medication_request("pat-1", "scan-1")["dosageInstruction"],
        resource_json=body)


def test_from_fhir_takes_a_coded_medication_absolute_references_and_supply_duration():
    body = medication_request("pat-1", "scan-1")
    body["subject"] = {"reference": "https://other.example/fhir/Patient/pat-1"}
    body["supportingInformation"].insert(0, {"reference": "Observation/obs-1"})
    body["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "723",
                                                     "display": "amoxicillin"}]}
    body["dosageInstruction"] = [{"text": "as needed"}]
    body["dispenseRequest"] = {"expectedSupplyDuration": {"value": 5, "unit": "days"}}
    parsed = from_fhir_medication_request(body)
    assert (parsed.patient_id, parsed.scan_id) == ("pat-1", "scan-1")
    assert parsed.medication == "amoxicillin"
    assert parsed.medication_code == {"coding": [{"system": RXNORM, "code": "723",
                                                  "display": "amoxicillin"}]}
    assert (parsed.dosage_text, parsed.duration, parsed.dose) == ("as needed", "5 days", None)


def _without(key: str) -> dict:
    body = medication_request("pat-1", "scan-1")
    del body[key]
    return body


@pytest.mark.parametrize(("body", "element"), [
    (_without("subject"), "subject: Field required"),
    ({**medication_request("pat-1", "scan-1"), "subject": {"reference": "Group/g1"}},
     "MedicationRequest.subject"),
    (_without("supportingInformation"), "MedicationRequest.supportingInformation"),
    ({**medication_request("pat-1", "scan-1"),
      "supportingInformation": [{"reference": "Observation/o1"}]},
     "MedicationRequest.supportingInformation"),
    (_without("medicationCodeableConcept"), "medicationCodeableConcept"),
    ({**medication_request("pat-1", "scan-1"), "medicationCodeableConcept": {"coding": [{}]}},
     "MedicationRequest.medicationCodeableConcept"),
    (_without("intent"), "intent"),
    ({**medication_request("pat-1", "scan-1"), "authoredOn": "yesterday"}, "authoredOn"),
    ({**medication_request("pat-1", "scan-1"), "resourceType": "Medication"}, "resourceType"),
])
def test_from_fhir_refuses_invalid_input_naming_the_element(body, element):
    with pytest.raises(ResourceValidationError, match=element):
        from_fhir_medication_request(body)


def prescription(**fields):
    values = {"id": "rx-1", "status": "active", "intent": "order", "patient_id": "pat-1",
              "scan_id": "scan-1", "pharmacist_id": "ph-1", "medication": "Amoxicillin",
              "medication_code": {"coding": [{"system": RXNORM, "code": "723"}]},
              "dose": "500 mg", "route": "oral", "frequency": "three times a day",
              "duration": "7 days", "dosage_text": None, "note": "Take with food",
              "authored_on": datetime(2025, 3, 14, 9, tzinfo=UTC), "dosage_instruction": None,
              "dispense_request": None, "status_reason": None, "warnings": None,
              "override_reason": None}
    return row(**{**values, **fields})


def test_to_fhir_references_patient_pharmacist_and_study_and_structures_the_dosage():
    data = emitted(to_fhir_medication_request(prescription()), "MedicationRequest")
    assert (data["status"], data["intent"]) == ("active", "order")
    assert data["subject"] == {"reference": "Patient/pat-1"}
    assert data["requester"] == {"reference": "Practitioner/ph-1"}
    assert data["supportingInformation"] == [{"reference": "ImagingStudy/scan-1"}]
    assert data["medicationCodeableConcept"] == {
        "coding": [{"system": RXNORM, "code": "723"}], "text": "Amoxicillin"}
    [dosage] = data["dosageInstruction"]
    assert dosage["text"] == "500 mg oral three times a day for 7 days"
    assert dosage["route"] == {"text": "oral"}
    assert dosage["timing"] == {"code": {"text": "three times a day"},
                                "repeat": {"boundsDuration": {"value": 7, "unit": "days"}}}
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 500, "unit": "mg"}}]
    assert data["note"] == [{"text": "Take with food"}]


def test_free_text_dose_and_duration_stay_text_only():
    data = emitted(to_fhir_medication_request(prescription(
        dose="one tablet", duration="until better", route=None, frequency=None, note=None,
        medication_code=None)), "MedicationRequest")
    [dosage] = data["dosageInstruction"]
    assert dosage == {"text": "one tablet for until better"}
    assert data["medicationCodeableConcept"] == {"text": "Amoxicillin"}
    assert "note" not in data


def test_dosage_summary_prefers_the_written_text_and_falls_back_to_as_directed():
    assert dosage_summary(prescription(dosage_text="Twice daily")) == "Twice daily"
    assert dosage_summary(prescription(dose=None, route=None, frequency=None,
                                       duration=None)) == "as directed"


def test_what_we_emit_parses_back_to_what_we_stored():
    # The dose is left out: "500 mg" is emitted as the decimal 500.0, which FHIR reads as
    # more precise than 500, so it parses back as "500.0 mg".
    parsed = from_fhir_medication_request(
        emitted(to_fhir_medication_request(prescription()), "MedicationRequest"))
    assert (parsed.patient_id, parsed.scan_id, parsed.medication, parsed.route,
            parsed.frequency, parsed.note) == ("pat-1", "scan-1", "Amoxicillin", "oral",
                                               "three times a day", "Take with food")


def test_medication_request_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_medication_request(prescription()), "MedicationRequest"))


STRUCTURED = [{
    "sequence": 1,
    "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                          "display": "Oral route"}]},
    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d",
                          "boundsDuration": {"value": 7, "unit": "days",
                                             "system": "http://unitsofmeasure.org",
                                             "code": "d"}}},
    "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg",
                                      "system": "http://unitsofmeasure.org", "code": "mg"}}],
}]


def test_a_structured_dosage_is_kept_and_served_exactly_as_sent():
    body = {**medication_request("pat-1", "scan-1"), "dosageInstruction": STRUCTURED,
            "dispenseRequest": {"expectedSupplyDuration": {
                "value": 7, "unit": "days", "system": "http://unitsofmeasure.org",
                "code": "d"}}}
    parsed = from_fhir_medication_request(body)
    assert parsed.dosage_instruction == STRUCTURED
    assert (parsed.dose, parsed.route, parsed.frequency, parsed.duration) == (
        "500 mg", "Oral route", "3 times a day", "7 days")
    data = emitted(to_fhir_medication_request(prescription(
        dosage_instruction=parsed.dosage_instruction,
        dispense_request=parsed.dispense_request)), "MedicationRequest")
    assert data["dosageInstruction"] == STRUCTURED
    assert data["dispenseRequest"] == body["dispenseRequest"]


@pytest.mark.parametrize("status", ["completed", "on-hold", "stopped", "unknown"])
def test_statuses_other_than_active_draft_or_a_cancellation_are_refused(status):
    with pytest.raises(ResourceValidationError, match="cancelled or entered-in-error"):
        from_fhir_medication_request({**medication_request("pat-1", "scan-1"),
                                      "status": status})


def test_a_warning_is_a_contained_detected_issue_with_the_override_as_mitigation():
    warning = {"code": "DOSEHINDA", "drug": "amoxicillin",
               "message": "amoxicillin: 15,000 mg a day exceeds the adult maximum of "
                          "4,000 mg a day", "daily_dose": 15000, "limit": 4000, "unit": "mg"}
    data = emitted(to_fhir_medication_request(prescription(
        status="cancelled", status_reason="typed in error", warnings=[warning],
        override_reason="checked with the consultant")), "MedicationRequest")
    assert data["statusReason"] == {"text": "typed in error"}
    [issue] = data["contained"]
    assert data["detectedIssue"] == [{"reference": "#dose-1"}]
    assert issue["resourceType"] == "DetectedIssue" and issue["severity"] == "high"
    assert issue["code"]["coding"][0]["code"] == "DOSEHINDA"
    assert issue["detail"] == warning["message"]
    assert issue["implicated"] == [{"reference": "MedicationRequest/rx-1"}]
    assert "checked with the consultant" in issue["mitigation"][0]["action"]["text"]
