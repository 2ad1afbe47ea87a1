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
SNOMED = "http://snomed.info/sct"
# Our own code system for the classifier's classes (no standard code exists for "Uncertain").
FINDING_SYSTEM = "urn:csss-fhir:codesystem:cxr-finding"
MRN_SYSTEM = "urn:csss-fhir:mrn"

# HL7 AI Transparency IG (STU1 ballot): meta.security labels. AIAST is in HL7's
# v3-ObservationValue; CLINAST_AIRPT is defined by the IG's own code system.
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
AI_TRANSPARENCY_PROVENANCE = "http://hl7.org/fhir/uv/aitransparency/CodeSystem/AddedProvenanceCS"
AI_ASSERTED = {"system": V3_OBSERVATION_VALUE, "code": "AIAST",
               "display": "Artificial Intelligence asserted"}
CLINICIAN_ASSERTED_FROM_AI = {"system": AI_TRANSPARENCY_PROVENANCE, "code": "CLINAST_AIRPT",
                              "display": "Clinician Asserted from AI Reported"}

# SNOMED CT concepts for the classifier's classes where one exists (checked against published
# HL7 value sets and SNOMED CT browsers; see the README). Other classes (Lung_Opacity,
# NIH_MERGED, Sick, Uncertain) carry only our own FINDING_SYSTEM code.
STANDARD_FINDINGS: dict[str, tuple[str, str, str]] = {
    "normal": (SNOMED, "17621005", "Normal"),
    "covid": (SNOMED, "882784691000119100",
              "Pneumonia caused by severe acute respiratory syndrome coronavirus 2"),
    "covid-19": (SNOMED, "882784691000119100",
                 "Pneumonia caused by severe acute respiratory syndrome coronavirus 2"),
    "viral pneumonia": (SNOMED, "75570004", "Viral pneumonia"),
    "bacterial pneumonia": (SNOMED, "53084003", "Bacterial pneumonia"),
    "pneumonia": (SNOMED, "233604007", "Pneumonia"),
}
# The Observation.code of every finding Observation: DICOM "Finding" (IHE AIR uses DCM codes).
FINDING_CODE_CODING = {"system": DCM, "code": "121071", "display": "Finding"}


def finding_key(label: str) -> str:
    """A label compared case- and underscore-insensitively ("Viral_Pneumonia" ~ "viral
    pneumonia")."""
    return " ".join(label.replace("_", " ").lower().split())


def instant(value: datetime) -> str:
    """A FHIR instant in UTC with the precision stored (microseconds), so that a search
    with the rendered `meta.lastUpdated` (`_lastUpdated=eq...`, `gt...`) finds exactly it."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def fhir_date(value: date) -> str:
    return value.isoformat()


def meta(obj: Any, *, version_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """`meta` for a domain object with `version_id` and `updated_at` columns."""
    return {
        "versionId": str(version_id if version_id is not None else obj.version_id),
        "lastUpdated": instant(obj.updated_at),
        **extra,
    }


# Elements the server sets on every resource it serves; never taken from a client's body.
SERVER_OWNED = frozenset({"id", "meta", "text"})


def merge_submitted(rendered: dict[str, Any], submitted: dict[str, Any] | None
                    ) -> dict[str, Any]:
    """A resource rendered from our rows, completed with what the client sent.

    Our columns model only part of a resource; the client's resource (stored as sent) is the
    source of truth for the rest. What the rows render wins wherever both hold a value
    (the rows may have changed since); the client's elements fill every gap: objects are
    merged key by key, lists item by item (the client's extra items are kept after ours).
    `id`, `meta` and `text` are always the server's.
    """
    if not submitted:
        return rendered
    merged = {key: value for key, value in submitted.items() if key not in SERVER_OWNED}
    for key, value in rendered.items():
        merged[key] = value if key in SERVER_OWNED else _merge(submitted.get(key), value)
    return merged


def _merge(sent: Any, ours: Any) -> Any:
    if isinstance(sent, dict) and isinstance(ours, dict):
        return {**sent, **{key: _merge(sent.get(key), value) for key, value in ours.items()}}
    if isinstance(sent, list) and isinstance(ours, list):
        return [_merge(sent[i] if i < len(sent) else None, item)
                for i, item in enumerate(ours)] + sent[len(ours):]
    return ours


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
    """A finding as a CodeableConcept: SNOMED CT where a concept exists, and always our own
    code (the model's class name, or the doctor's finding)."""
    coding = [{"system": FINDING_SYSTEM, "code": label, "display": label.replace("_", " ")}]
    standard = STANDARD_FINDINGS.get(finding_key(label))
    if standard:
        system, code, display = standard
        coding.insert(0, {"system": system, "code": code, "display": display})
    return {"coding": coding, "text": label.replace("_", " ")}


def finding_labels_for_code(system: str | None, code: str) -> list[str]:
    """The findings a `value-concept` token can mean, normalised like `finding_key` (our own
    code, or a SNOMED CT code: every label we map to it)."""
    keys: set[str] = set()
    if system in (None, FINDING_SYSTEM):
        keys.add(finding_key(code))
    if system in (None, SNOMED):
        keys |= {key for key, (_, snomed, _) in STANDARD_FINDINGS.items() if snomed == code}
    return sorted(keys)


def observation_code_matches(system: str | None, code: str) -> bool:
    """Does a `code` token match FINDING_CODE_CODING (the code of our Observations)?"""
    return code == FINDING_CODE_CODING["code"] and system in (None, DCM)
