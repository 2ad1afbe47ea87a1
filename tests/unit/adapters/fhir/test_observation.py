from __future__ import annotations

from datetime import UTC, datetime

from adapters.fhir.common import (
    AI_ASSERTED,
    CLINICIAN_ASSERTED_FROM_AI,
    DCM,
    FINDING_CODE_CODING,
    FINDING_SYSTEM,
    SNOMED,
    UCUM,
)
from adapters.fhir.observation import (
    FINDING_EXTENSION,
    to_fhir_ai_observation,
    to_fhir_doctor_observation,
)
from tests.factories import emitted, row

CREATED = datetime(2025, 3, 14, 8, 5, tzinfo=UTC)


def prediction(**fields):
    values = {"id": "obs-ai", "patient_id": "pat-1", "scan_id": "scan-1", "device_id": "dev-1",
              "status": "preliminary", "created_at": CREATED, "label": "Viral_Pneumonia",
              "top_class": "Viral_Pneumonia", "confidence": 0.8125, "threshold": 0.75,
              "uncertain": False,
              "probabilities": {"Normal": 0.1, "Viral_Pneumonia": 0.8125, "Lung_Opacity": 0.0875}}
    return row(**{**values, **fields})


def review(**fields):
    values = {"id": "obs-dr", "patient_id": "pat-1", "scan_id": "scan-1",
              "prediction_id": "obs-ai", "doctor_id": "doc-1", "status": "final",
              "created_at": CREATED, "finding": "Normal", "agree": False,
              "note": "Clear lungs on review.", "provisional_finding": None,
              "superseded_reason": None}
    return row(**{**values, **fields})


def test_the_ai_observation_is_preliminary_ai_asserted_and_made_by_the_device():
    data = emitted(to_fhir_ai_observation(prediction()), "Observation")
    assert data["status"] == "preliminary"
    assert data["meta"]["security"] == [AI_ASSERTED]
    assert data["code"]["coding"] == [FINDING_CODE_CODING]
    assert data["category"][0]["coding"][0]["code"] == "imaging"
    assert data["device"] == {"reference": "Device/dev-1"}
    assert data["subject"] == {"reference": "Patient/pat-1"}
    assert data["derivedFrom"] == [{"reference": "ImagingStudy/scan-1"}]
    assert [c["code"] for c in data["valueCodeableConcept"]["coding"]] == [
        "75570004", "Viral_Pneumonia"]
    assert "performer" not in data


def test_each_class_probability_is_a_certainty_component_naming_its_class():
    components = emitted(to_fhir_ai_observation(prediction()), "Observation")["component"]
    assert len(components) == 3
    for component, (name, probability) in zip(components, prediction().probabilities.items(),
                                              strict=True):
        # The code says what is measured; the class is in the extension, not a synonym.
        [certainty] = component["code"]["coding"]
        assert (certainty["system"], certainty["code"]) == (DCM, "111012")
        [finding] = component["extension"]
        assert finding["url"] == FINDING_EXTENSION
        assert finding["valueCodeableConcept"]["coding"][-1] == {
            "system": FINDING_SYSTEM, "code": name, "display": name.replace("_", " ")}
        assert component["valueQuantity"] == {"value": probability, "unit": "probability",
                                              "system": UCUM, "code": "1"}


def test_an_uncertain_proposal_says_a_finding_is_required():
    data = emitted(to_fhir_ai_observation(prediction(
        label="Uncertain", uncertain=True, confidence=0.5)), "Observation")
    assert data["valueCodeableConcept"]["coding"] == [
        {"system": FINDING_SYSTEM, "code": "Uncertain", "display": "Uncertain"}]
    assert "explicit finding is required" in data["note"][0]["text"]
    assert "threshold 0.75" in data["note"][0]["text"]


def test_the_doctor_observation_is_final_clinician_asserted_and_derived_from_the_ai_one():
    data = emitted(to_fhir_doctor_observation(review()), "Observation")
    assert data["status"] == "final"
    assert data["meta"]["security"] == [CLINICIAN_ASSERTED_FROM_AI]
    assert data["performer"] == [{"reference": "Practitioner/doc-1"}]
    assert data["derivedFrom"] == [{"reference": "Observation/obs-ai"},
                                   {"reference": "ImagingStudy/scan-1"}]
    assert data["valueCodeableConcept"]["coding"][0] == {
        "system": SNOMED, "code": "17621005", "display": "Normal"}
    assert data["component"] == [{"code": {"text": "Agrees with the AI proposal"},
                                  "valueBoolean": False}]
    assert data["note"] == [{"text": "Clear lungs on review."}]
    assert "device" not in data


def test_a_superseded_verification_is_cancelled_and_says_why():
    data = emitted(to_fhir_doctor_observation(review(
        status="cancelled", superseded_reason="Sent back to the doctor by the admin: why?")),
        "Observation")
    assert data["status"] == "cancelled"
    assert data["note"][-1] == {"text": "Superseded. Sent back to the doctor by the admin: why?"}


def test_a_blind_reads_provisional_finding_is_a_component_beside_the_final_one():
    data = emitted(to_fhir_doctor_observation(review(provisional_finding="Lung_Opacity")),
                   "Observation")
    provisional = data["component"][1]
    assert provisional["code"]["text"].startswith("Provisional finding")
    assert provisional["valueCodeableConcept"]["text"] == "Lung Opacity"
    assert data["valueCodeableConcept"]["text"] == "Normal"


def test_observation_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_ai_observation(prediction()), "Observation"))
    hl7_schema(emitted(to_fhir_doctor_observation(review()), "Observation"))
    hl7_schema(emitted(to_fhir_doctor_observation(review(
        status="cancelled", provisional_finding="Normal", superseded_reason="x")),
        "Observation"))
