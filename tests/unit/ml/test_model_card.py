"""ml.model_card: metadata and its FHIR R4 Device form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from ml.infer import DEMO_MODEL, Classifier
from ml.model_card import assessability_markdown, build_metadata, device_resource
from tests.factories import schema_check


def test_device_carries_name_version_manufacturer_threshold_and_classes():
    metadata = build_metadata(classes=["A", "B"], input_size=(224, 224), threshold=0.75,
                              temperature=1.3)
    metadata["sha256"] = "ab" * 32
    device = device_resource(metadata, device_id="model-1")
    assert device["resourceType"] == "Device" and device["id"] == "model-1"
    assert device["deviceName"][0]["name"] == metadata["name"]
    assert device["version"][0]["value"] == metadata["version"]
    assert device["manufacturer"] == "CSSS-FHIR project"
    properties = {p["type"]["text"]: p for p in device["property"]}
    assert properties["confidence-threshold"]["valueQuantity"][0]["value"] == 0.75
    assert properties["calibration-temperature"]["valueQuantity"][0]["value"] == 1.3
    assert [c["text"] for c in properties["classes"]["valueCode"]] == ["A", "B"]
    assert device["identifier"][0]["value"] == "ab" * 32
    json.dumps(device)


def test_absent_sha256_temperature_and_intended_use_are_left_out():
    device = device_resource({"name": "m", "version": "1"})
    assert "identifier" not in device and "note" not in device
    properties = {p["type"]["text"]: p for p in device["property"]}
    assert "calibration-temperature" not in properties
    assert properties["confidence-threshold"]["valueQuantity"][0]["value"] == 0.75


def test_demo_model_device_validates_as_fhir_r4():
    device_module = pytest.importorskip("fhir.resources.R4B.device")
    device = device_resource(Classifier.load(DEMO_MODEL).metadata)
    parsed = device_module.Device.model_validate(device)
    assert parsed.deviceName[0].name == "csss-cxr-mobilenetv2"
    schema_check(device)  # HL7's R4 JSON Schema, where ../shared/fhir is present


def test_the_served_device_is_the_model_cards_device_with_meta():
    """One mapping: the FHIR API serves exactly what the model card describes."""
    from adapters.fhir.device import to_fhir_device

    metadata = Classifier.load(DEMO_MODEL).metadata
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = SimpleNamespace(id="model-1", name=metadata["name"], version=metadata["version"],
                          sha256=metadata["sha256"], model_metadata=metadata, version_id=3,
                          created_at=now, updated_at=now)
    served = json.loads(to_fhir_device(row).model_dump_json())
    assert served.pop("meta")["versionId"] == "3"
    card = json.loads(json.dumps(device_resource(metadata, device_id="model-1")))
    assert served == card


def test_model_card_shows_the_demo_models_assessability_limits():
    metadata = Classifier.load(DEMO_MODEL).metadata
    table = assessability_markdown(metadata)
    assert f"< {metadata['assessability']['min_side']} px" in table
    card = (DEMO_MODEL.parent.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert table in card, "ml/MODEL_CARD.md is out of date: paste assessability_markdown()"
    assert assessability_markdown({"classes": ["A"]}) == ""
