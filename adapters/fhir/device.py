"""Classifier metadata -> FHIR Device.

The mapping itself is `ml.model_card.device_resource`, so the Device served here and the one
the model card describes are the same resource; this adds the stored row's id and meta.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.device import Device

from adapters.fhir.common import meta
from ml.model_card import device_resource


def to_fhir_device(device: Any) -> Device:
    """A stored model version (name, version, sha256, metadata) as a FHIR Device.

    The row's own columns win over the metadata it stored: they are what the Device is keyed on.
    """
    metadata = {**device.model_metadata, "name": device.name, "version": device.version,
                "sha256": device.sha256}
    return Device.model_validate({**device_resource(metadata, device_id=device.id),
                                  "meta": meta(device)})
