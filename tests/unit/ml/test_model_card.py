"""ml.model_card: metadata and its FHIR R4 Device form."""

from __future__ import annotations

import json

import pytest

from ml.infer import DEMO_MODEL, Classifier
from ml.model_card import assessability_markdown, build_metadata, device_resource


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
    assert properties["decision threshold (tau)"]["valueQuantity"][0]["value"] == 0.75
    assert [c["text"] for c in properties["classes"]["valueCode"]] == ["A", "B"]
    assert device["identifier"][0]["value"] == "ab" * 32
    json.dumps(device)


def test_demo_model_device_validates_as_fhir_r4():
    device_module = pytest.importorskip("fhir.resources.R4B.device")
    device = device_resource(Classifier.load(DEMO_MODEL).metadata)
    parsed = device_module.Device.model_validate(device)
    assert parsed.deviceName[0].name == "csss-cxr-mobilenetv2"


def test_model_card_shows_the_demo_models_assessability_limits():
    metadata = Classifier.load(DEMO_MODEL).metadata
    table = assessability_markdown(metadata)
    assert f"< {metadata['assessability']['min_side']} px" in table
    card = (DEMO_MODEL.parent.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert table in card, "ml/MODEL_CARD.md is out of date: paste assessability_markdown()"
    assert assessability_markdown({"classes": ["A"]}) == ""
