"""Scan -> FHIR ImagingStudy."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.imagingstudy import ImagingStudy

from adapters.fhir.common import DCM, DICOM_UID, SNOMED, instant, meta, reference

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MODALITY_NAMES = {
    "DX": "Digital Radiography", "CR": "Computed Radiography", "CT": "Computed Tomography",
    "MR": "Magnetic Resonance", "US": "Ultrasound", "OT": "Other", "NM": "Nuclear Medicine",
    "PT": "Positron emission tomography", "XA": "X-Ray Angiography", "MG": "Mammography",
    "RF": "Radio Fluoroscopy",
}
# DICOM Body Part Examined (CID 4031) -> SNOMED CT, for the parts a chest service sees.
BODY_PARTS = {
    "CHEST": ("51185008", "Thoracic structure"),
    "THORAX": ("51185008", "Thoracic structure"),
}


def body_site(text: str) -> dict[str, Any]:
    """ImagingStudy.series.bodySite (a Coding in R4): SNOMED CT where we know the part."""
    known = BODY_PARTS.get(text.strip().upper())
    if known:
        return {"system": SNOMED, "code": known[0], "display": known[1]}
    return {"display": text}


def _unsigned(number: int | None) -> int:
    """A DICOM IS number as FHIR unsignedInt (JPEG/PNG uploads and odd values: 1)."""
    return number if number is not None and number >= 0 else 1


WADO_RS = {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
           "code": "dicom-wado-rs", "display": "DICOM WADO-RS"}


def wado_rs_endpoint(address: str) -> dict[str, Any]:
    """A contained Endpoint naming the DICOMweb base the study's instances are served from."""
    return {"resourceType": "Endpoint", "id": "wado-rs", "status": "active",
            "connectionType": WADO_RS, "payloadType": [{"text": "DICOM"}],
            "payloadMimeType": ["application/dicom"], "address": address}


def to_fhir_imaging_study(scan: Any, *, dicomweb: str | None = None) -> ImagingStudy:
    """The scan as ImagingStudy; `dicomweb` (the WADO-RS base) adds its Endpoint."""
    modality = {"system": DCM, "code": scan.modality,
                "display": MODALITY_NAMES.get(scan.modality, scan.modality)}
    series: dict[str, Any] = {
        "uid": scan.series_uid,
        "number": _unsigned(scan.series_number),
        "modality": modality,
        "numberOfInstances": 1,
        "instance": [{
            "uid": scan.instance_uid,
            "sopClass": {"system": "urn:ietf:rfc:3986",
                         "code": f"urn:oid:{scan.sop_class_uid or SECONDARY_CAPTURE}"},
            "number": _unsigned(scan.instance_number),
        }],
    }
    if scan.body_site:
        series["bodySite"] = body_site(scan.body_site)
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
    if dicomweb:
        data["contained"] = [wado_rs_endpoint(dicomweb)]
        data["endpoint"] = [{"reference": "#wado-rs"}]
    return ImagingStudy.model_validate(data)
