"""Scan -> FHIR ImagingStudy."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.imagingstudy import ImagingStudy

from adapters.fhir.common import DCM, DICOM_UID, instant, meta, reference

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MODALITY_NAMES = {
    "DX": "Digital Radiography", "CR": "Computed Radiography", "CT": "Computed Tomography",
    "MR": "Magnetic Resonance", "US": "Ultrasound", "OT": "Other",
}


def to_fhir_imaging_study(scan: Any) -> ImagingStudy:
    modality = {"system": DCM, "code": scan.modality,
                "display": MODALITY_NAMES.get(scan.modality, scan.modality)}
    series: dict[str, Any] = {
        "uid": scan.series_uid,
        "number": 1,
        "modality": modality,
        "numberOfInstances": 1,
        "instance": [{
            "uid": scan.instance_uid,
            "sopClass": {"system": "urn:ietf:rfc:3986",
                         "code": f"urn:oid:{scan.sop_class_uid or SECONDARY_CAPTURE}"},
            "number": 1,
        }],
    }
    if scan.body_site:
        series["bodySite"] = {"display": scan.body_site}
    data: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": scan.id,
        "meta": meta(scan),
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{scan.study_uid}"}],
        "status": scan.status,
        "modality": [modality],
        "subject": reference("Patient", scan.patient_id),
        "started": instant(scan.started or scan.created_at),
        "numberOfSeries": 1,
        "numberOfInstances": 1,
        "series": [series],
    }
    if scan.description:
        data["description"] = scan.description
    return ImagingStudy.model_validate(data)
