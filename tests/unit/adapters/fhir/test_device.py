from __future__ import annotations

from adapters.fhir.common import UCUM
from adapters.fhir.device import to_fhir_device
from tests.factories import emitted, row

SHA = "ab" * 32


def device(**metadata):
    values = {"classes": ["Normal", "Viral_Pneumonia"], "threshold": 0.8,
              "temperature": 1.5, "intended_use": "Decision support only"}
    return row(id="dev-1", name="cxr-mobilenet", version="2.1.0", sha256=SHA,
               model_metadata={**values, **metadata})


def test_a_device_names_the_model_its_version_threshold_and_classes():
    data = emitted(to_fhir_device(device()), "Device")
    assert data["status"] == "active"
    assert data["deviceName"] == [{"name": "cxr-mobilenet", "type": "model-name"}]
    assert data["version"] == [{"value": "2.1.0"}] and data["modelNumber"] == "2.1.0"
    properties = {p["type"]["text"]: p for p in data["property"]}
    assert properties["confidence-threshold"]["valueQuantity"] == [
        {"value": 0.8, "system": UCUM, "code": "1", "unit": "probability"}]
    assert properties["classes"]["valueCode"] == [{"text": "Normal"},
                                                  {"text": "Viral_Pneumonia"}]
    assert properties["calibration-temperature"]["valueQuantity"] == [{"value": 1.5}]
    assert data["note"] == [{"text": "Intended use: Decision support only"},
                            {"text": f"Model file SHA-256: {SHA}"}]


def test_missing_metadata_falls_back_to_defaults():
    data = emitted(to_fhir_device(row(id="dev-2", name="m", version="1", sha256=SHA,
                                      model_metadata={})), "Device")
    properties = {p["type"]["text"]: p for p in data["property"]}
    assert properties["confidence-threshold"]["valueQuantity"][0]["value"] == 0.75
    assert "calibration-temperature" not in properties
    assert data["manufacturer"] == "CSSS-FHIR project"
    assert data["note"] == [{"text": f"Model file SHA-256: {SHA}"}]


def test_device_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_device(device()), "Device"))
