"""Pieces every FHIR mapping uses: meta, references, instants, code systems."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

FHIR_JSON = "application/fhir+json; charset=utf-8"
FHIR_VERSION = "4.0.1"

DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
DICOM_UID = "urn:dicom:uid"
# Our own code system for the classifier's classes (no standard code exists for "Uncertain").
FINDING_SYSTEM = "urn:csss-fhir:codesystem:cxr-finding"
MRN_SYSTEM = "urn:csss-fhir:mrn"


def instant(value: datetime) -> str:
    """A FHIR instant in UTC with millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fhir_date(value: date) -> str:
    return value.isoformat()


def meta(obj: Any, *, version_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """`meta` for a domain object with `version_id` and `updated_at` columns."""
    return {
        "versionId": str(version_id if version_id is not None else obj.version_id),
        "lastUpdated": instant(obj.updated_at),
        **extra,
    }


def reference(resource_type: str, resource_id: str | None, display: str | None = None
              ) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def parse_reference(value: Any, expected_type: str) -> str | None:
    """The id in a `{"reference": "Type/id"}` (or absolute URL ending so), else None."""
    if not isinstance(value, dict):
        return None
    text = value.get("reference")
    if not isinstance(text, str):
        return None
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == expected_type and parts[-1]:
        return parts[-1]
    return None


def finding_concept(label: str) -> dict[str, Any]:
    return {
        "coding": [{"system": FINDING_SYSTEM, "code": label, "display": label.replace("_", " ")}],
        "text": label.replace("_", " "),
    }
