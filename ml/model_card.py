"""The model's metadata (its machine-readable model card) and its FHIR R4 Device form.

The metadata travels beside the model file as JSON (``model.tflite`` → ``model.json``) and is
the only place class names, input size, preprocessing, τ and temperature come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MANUFACTURER = "CSSS-FHIR project"
DEFAULT_THRESHOLD = 0.75  # τ of a model whose metadata names none (ml.training's default)
UCUM = "http://unitsofmeasure.org"
INTENDED_USE = "demonstration and research only — not for clinical use"
PREPROCESSING = (
    "decode with OpenCV (16-bit min–max scaled to 8-bit) → RGB → bilinear resize to "
    "{height}×{width} (cv2.INTER_LINEAR) → float32 / 255; the model maps [0, 1] to [-1, 1] "
    "itself"
)
LIMITATIONS = [
    "Trained on a small public set (a few thousand images); not validated on any clinical "
    "population.",
    "Source/age confound: the non-COVID classes are pediatric images from one hospital, the "
    "COVID images adult and from many sources (often figure screenshots); the model can "
    "separate COVID by age and source cues alone, so in-distribution accuracy is optimistic.",
    "Several images of one patient may fall in different splits (patient ids were lost).",
    "Only the classes listed are known; any other finding is forced into one of them or "
    "answered 'Uncertain'.",
    "Images it cannot judge (too small, not a radiograph, out of distribution, undecodable) "
    "are answered 'Not assessable' only as far as the fitted limits reach: they were measured "
    "on synthetic and transformed images, not on other body parts' radiographs.",
]


def build_metadata(
    *,
    classes: Sequence[str],
    input_size: Sequence[int],
    threshold: float,
    temperature: float,
    metrics: dict | None = None,
    training_data: dict | None = None,
    training: dict | None = None,
    name: str = "csss-cxr-mobilenetv2",
    version: str = "0.1.0",
) -> dict:
    """Assemble the metadata dict (JSON-serialisable) for a trained model."""
    height, width = int(input_size[0]), int(input_size[1])
    return {
        "name": name,
        "version": version,
        "manufacturer": MANUFACTURER,
        "architecture": "MobileNetV2 (alpha 1.0, ImageNet) → GAP → Dense(128, ReLU) → Dense(K)",
        "classes": list(classes),
        "input_size": [height, width],
        "preprocessing": PREPROCESSING.format(height=height, width=width),
        "threshold": float(threshold),
        "temperature": float(temperature),
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
        "metrics": dict(metrics or {}),
        "training_data": dict(training_data or {}),
        "training": dict(training or {}),
    }


def device_resource(metadata: Mapping[str, Any], device_id: str | None = None) -> dict:
    """Describe the model as a FHIR R4 ``Device`` resource (a plain JSON dict, no ``meta``).

    The one Device mapping: ``adapters.fhir.device`` serves exactly this, adding the stored
    row's ``meta``. Name, version and manufacturer come from the metadata; τ, the temperature
    and the class list are ``property`` entries (τ a UCUM dimensionless quantity). The sha256
    of the model file is an ``identifier``, so an Observation that references this Device
    pins the exact model, and a ``note`` for people reading it. Absent τ is the training
    default (0.75); absent temperature and intended use are left out, not invented.

    Raises:
        KeyError: the metadata has no ``name`` or ``version``.
    """
    version = str(metadata["version"])
    properties: list[dict] = [
        {"type": {"text": "confidence-threshold"},
         "valueQuantity": [{"value": float(metadata.get("threshold", DEFAULT_THRESHOLD)),
                            "system": UCUM, "code": "1", "unit": "probability"}]},
        {"type": {"text": "classes"},
         "valueCode": [{"text": c} for c in metadata.get("classes", [])]},
    ]
    if metadata.get("temperature") is not None:
        properties.append({"type": {"text": "calibration-temperature"},
                           "valueQuantity": [{"value": float(metadata["temperature"])}]})
    notes = [{"text": f"Intended use: {metadata['intended_use']}"}] \
        if metadata.get("intended_use") else []
    resource: dict = {
        "resourceType": "Device",
        "status": "active",
        "manufacturer": metadata.get("manufacturer") or MANUFACTURER,
        "deviceName": [{"name": str(metadata["name"]), "type": "model-name"}],
        "modelNumber": version,
        "type": {"text": "AI chest X-ray classifier (MobileNetV2)"},
        "version": [{"value": version}],
        "property": properties,
    }
    if metadata.get("sha256"):
        resource["identifier"] = [
            {"type": {"text": "sha256 of the model file"}, "value": metadata["sha256"]}
        ]
        notes.append({"text": f"Model file SHA-256: {metadata['sha256']}"})
    if notes:
        resource["note"] = notes
    if device_id is not None:
        resource["id"] = device_id
    return resource


def assessability_markdown(metadata: dict) -> str:
    """The "Not assessable" limits of a model's metadata as a markdown table (model card).

    Returns "" for a model without limits. ``ml/MODEL_CARD.md`` embeds this table verbatim
    (a test compares them), so the card cannot drift from ``model.json``.
    """
    entry = metadata.get("assessability")
    if not entry:
        return ""
    quantiles = entry.get("ood_validation_distance_quantiles", {})
    rows = [
        ("too_small", f"shorter side < {entry['min_side']} px"),
        ("not_radiograph", f"aspect ratio > {entry['max_aspect_ratio']:g}; colour spread > "
                           f"{entry['max_colour']:.1f}; contrast (gray std) < "
                           f"{entry['min_contrast']:.2f}; roughness > "
                           f"{entry['max_roughness']:.3f}; layout < {entry['min_layout']:.3f}"),
        ("out_of_distribution", f"squared Mahalanobis distance > {entry['ood_threshold']:.0f} "
                                f"(validation median {quantiles.get('0.5', float('nan')):.0f}, "
                                f"max {quantiles.get('1.0', float('nan')):.0f}; "
                                f"{entry.get('ood_validation_pass_rate', float('nan')):.1%} "
                                "of the validation split pass)"),
        ("undecodable", "the bytes are not an image OpenCV can decode"),
    ]
    lines = ["| reason | refused when |", "|---|---|"]
    lines += [f"| `{reason}` | {rule} |" for reason, rule in rows]
    return "\n".join(lines) + "\n"
