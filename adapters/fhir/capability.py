"""The CapabilityStatement, generated from what the server really serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from adapters.fhir.common import FHIR_VERSION, instant

SEARCH_TYPES = {
    "_id": "token", "_lastUpdated": "date", "patient": "reference", "subject": "reference",
    "status": "token", "identifier": "token", "name": "string", "birthdate": "date",
    "email": "token", "active": "token", "focus": "reference", "business-status": "token",
    "started": "date", "category": "token", "code": "token", "derived-from": "reference",
    "authoredon": "date", "issued": "date", "target": "reference", "role": "token",
}
OPERATIONS = ("upload", "classify", "verify", "pharmacy-review", "approve")
BINARY = "Binary"


def capability_statement(*, base_url: str, searchable: dict[str, list[str]],
                         creatable: tuple[str, ...], software_version: str
                         ) -> CapabilityStatement:
    resources: list[dict[str, Any]] = []
    for resource_type, params in sorted(searchable.items()):
        interactions = [{"code": "read"}, {"code": "vread"}, {"code": "search-type"},
                        {"code": "history-instance"}]
        if resource_type in creatable:
            interactions.append({"code": "create"})
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": interactions,
            "versioning": "versioned",
            "readHistory": True,
            "searchParam": [{"name": p, "type": SEARCH_TYPES.get(p, "token")} for p in params],
        }
        if resource_type == "ImagingStudy":
            entry["operation"] = [
                {"name": op, "definition": f"{base_url}/OperationDefinition/ImagingStudy-{op}"}
                for op in OPERATIONS
            ]
        if resource_type == "DiagnosticReport":
            entry["searchInclude"] = ["DiagnosticReport:result"]
        if resource_type == "Observation":
            entry["searchInclude"] = ["Observation:derived-from"]
        if resource_type == "ImagingStudy":
            entry["searchInclude"] = ["ImagingStudy:patient"]
        resources.append(entry)
    resources.append({"type": BINARY, "interaction": [{"code": "read"}]})
    return CapabilityStatement.model_validate({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(datetime.now(UTC)),
        "kind": "instance",
        "software": {"name": "CSSS-FHIR", "version": software_version},
        "implementation": {"description": "CSSS-FHIR chest-scan AI workflow server",
                           "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": True,
                "description": "OAuth2-style bearer tokens (JWT) from POST /auth/token; "
                               "admins need a second factor.",
            },
            "resource": resources,
        }],
    })
