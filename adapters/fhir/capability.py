"""The CapabilityStatement, generated from what the server really serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from adapters.fhir.common import FHIR_VERSION, instant

OPERATIONS = ("upload", "classify", "verify", "pharmacy-review", "approve")
VALIDATE_OPERATION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
BINARY = "Binary"
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
# Search result parameters every searchable type takes (rest.searchParam).
RESULT_PARAMETERS = (
    ("_count", "number", "page size (default 20, at most 100)"),
    ("_offset", "number", "paging offset, as used in the next/previous links"),
    ("_sort", "token", "_lastUpdated or -_lastUpdated"),
    ("_summary", "token", "count: the total only"),
)


def capability_statement(*, base_url: str, searchable: dict[str, Any],
                         creatable: tuple[str, ...], software_version: str,
                         includes: dict[str, tuple[str, ...]] | None = None,
                         revincludes: dict[str, tuple[str, ...]] | None = None,
                         validatable: tuple[str, ...] = ()) -> CapabilityStatement:
    """`searchable` maps each type to {parameter: FHIR search type} (search.parameter_types),
    so the statement lists exactly what search.PARAMETERS implements."""
    resources: list[dict[str, Any]] = []
    for resource_type, params in sorted(searchable.items()):
        types = params if isinstance(params, dict) else {p: "token" for p in params}
        interactions = [{"code": "read"}, {"code": "vread"}, {"code": "search-type"},
                        {"code": "history-instance"}]
        if resource_type in creatable:
            interactions.append({"code": "create"})
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": interactions,
            "versioning": "versioned",
            "readHistory": True,
            "searchParam": [{"name": name, "type": kind} for name, kind in types.items()],
        }
        if (includes or {}).get(resource_type):
            entry["searchInclude"] = list(includes[resource_type])
        if (revincludes or {}).get(resource_type):
            entry["searchRevInclude"] = list(revincludes[resource_type])
        operations = []
        if resource_type == "ImagingStudy":
            operations += [
                {"name": op, "definition": f"{base_url}/OperationDefinition/ImagingStudy-{op}"}
                for op in OPERATIONS
            ]
        if resource_type in validatable:
            operations.append({"name": "validate", "definition": VALIDATE_OPERATION})
        if operations:
            entry["operation"] = operations
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
                "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}]}],
                "extension": [{"url": SMART_OAUTH_URIS, "extension": [
                    {"url": "token", "valueUri": f"{base_url.removesuffix('/fhir')}/auth/token"},
                ]}],
                "description": "Bearer tokens (JWT) from POST /auth/token: users sign in with "
                               "a password (admins also with a one-time code); hospital "
                               "systems use client_credentials and SMART system scopes "
                               "(see /.well-known/smart-configuration).",
            },
            "resource": resources,
            "searchParam": [{"name": name, "type": kind, "documentation": text}
                            for name, kind, text in RESULT_PARAMETERS],
        }],
    })
