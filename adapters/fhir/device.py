"""Classifier metadata -> FHIR Device."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.device import Device

from adapters.fhir.common import UCUM, meta


def to_fhir_device(device: Any) -> Device:
    metadata = device.model_metadata
    classes = metadata.get("classes", [])
    properties: list[dict[str, Any]] = [
        {"type": {"text": "confidence-threshold"},
         "valueQuantity": [{"value": float(metadata.get("threshold", 0.75)), "system": UCUM,
                            "code": "1", "unit": "probability"}]},
        {"type": {"text": "classes"}, "valueCode": [{"text": c} for c in classes]},
    ]
    if metadata.get("temperature") is not None:
        properties.append({"type": {"text": "calibration-temperature"},
                           "valueQuantity": [{"value": float(metadata["temperature"])}]})
    notes = [{"text": f"Intended use: {metadata['intended_use']}"}] \
        if metadata.get("intended_use") else []
    notes.append({"text": f"Model file SHA-256: {device.sha256}"})
    return Device.model_validate({
        "resourceType": "Device",
        "id": device.id,
        "meta": meta(device),
        "status": "active",
        "manufacturer": metadata.get("manufacturer") or "CSSS-FHIR project",
        "deviceName": [{"name": device.name, "type": "model-name"}],
        "modelNumber": device.version,
        "type": {"text": "AI chest X-ray classifier (MobileNetV2)"},
        "version": [{"value": device.version}],
        "property": properties,
        "note": notes,
    })
