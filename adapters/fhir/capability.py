"""The CapabilityStatement, generated from what the server really serves.

No Flask here: the API layer passes the search declarations and the operations it found in
its URL map as plain data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from adapters.fhir.common import FHIR_VERSION, instant

BINARY = "Binary"
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
TOPIC_CANONICAL = ("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                   "capabilitystatement-subscriptiontopic-canonical")
SUBSCRIPTION = "Subscription"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
# Search result parameters every searchable type takes (rest.searchParam).
RESULT_PARAMETERS = (
    ("_count", "number", "page size (default 20, at most 100)"),
    ("_offset", "number", "paging offset (the first page's position)"),
    ("_cursor", "string", "keyset page position, as used in the next/previous links"),
    ("_sort", "token", "_lastUpdated or a search parameter of the type that has an order "
                       "(all but Provenance's patient; a refusal names them), '-' for "
                       "descending, comma-separated"),
    ("_summary", "token", "true, text, data, false, or count (the total only)"),
    ("_elements", "string", "the top-level elements to return (plus the mandatory ones)"),
    ("_total", "token", "none leaves Bundle.total out; estimate and accurate count exactly"),
)


@dataclass(frozen=True)
class Operation:
    """An operation the server answers: `$name` on `resource_type` (type or instance level)."""

    resource_type: str
    name: str  # without the `$`
    instance: bool = False  # `[type]/[id]/$name` rather than `[type]/$name`


def operation_url(base_url: str, operation: Operation) -> str:
    """The canonical URL of the operation's OperationDefinition, which the server serves
    (`adapters.fhir.operation_definition`); $validate's names the standard one as `base`."""
    return f"{base_url}/OperationDefinition/{operation.resource_type}-{operation.name}"


def search_parameter_url(base_url: str, resource_type: str, code: str) -> str:
    """The canonical URL of one of our own SearchParameters, which the server serves."""
    return f"{base_url}/SearchParameter/{resource_type}-{code}"


# The conformance resources the server serves (read, search by url and name), with R4's
# definitions of those parameters.
CONFORMANCE_TYPES = ("OperationDefinition", "SearchParameter")
_CONFORMANCE_PARAMETERS = (
    ("_id", "token", "http://hl7.org/fhir/SearchParameter/Resource-id"),
    ("url", "uri", "http://hl7.org/fhir/SearchParameter/conformance-url"),
    ("name", "string", "http://hl7.org/fhir/SearchParameter/conformance-name"),
)


def _operation_entries(base_url: str, operations: Iterable[Operation]
                       ) -> dict[str, list[dict[str, str]]]:
    """{type: rest.resource.operation entries}, in the order given, each operation once."""
    entries: dict[str, list[dict[str, str]]] = {}
    for operation in dict.fromkeys(operations):
        entries.setdefault(operation.resource_type, []).append(
            {"name": operation.name, "definition": operation_url(base_url, operation)})
    return entries


def _resource_entry(resource_type: str, params: Any, *, creatable: bool, updatable: bool,
                    includes: tuple[str, ...], revincludes: tuple[str, ...],
                    operations: list[dict[str, str]],
                    definitions: dict[str, str],
                    modifiers: dict[str, list[str]]) -> dict[str, Any]:
    """One rest.resource entry; `params` is {name: FHIR search type} or names of tokens;
    `definitions` {name: canonical URL of its SearchParameter}; `modifiers` {name: the
    modifiers it takes}, stated in its documentation (R4's own SearchParameters list none)."""
    types = params if isinstance(params, dict) else {p: "token" for p in params}
    interactions = [{"code": "read"}, {"code": "vread"}, {"code": "search-type"},
                    {"code": "history-instance"}]
    if creatable:
        interactions.append({"code": "create"})
    if updatable:
        interactions.append({"code": "update"})
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": interactions,
        "versioning": "versioned",
        "readHistory": True,
        # If-None-Match / If-Modified-Since give 304 on read and vread.
        "conditionalRead": "full-support",
        "searchParam": [{"name": name, "type": kind, "definition": definitions.get(name),
                         **({"documentation": "modifiers: " + ", ".join(
                             f":{m}" for m in modifiers[name])} if modifiers.get(name) else {})}
                        for name, kind in types.items()],
    }
    if creatable:
        entry["conditionalCreate"] = True  # If-None-Exist
    optional = {"searchInclude": list(includes), "searchRevInclude": list(revincludes),
                "operation": operations}
    entry.update({key: value for key, value in optional.items() if value})
    return entry


def capability_statement(*, base_url: str, searchable: dict[str, Any],
                         creatable: tuple[str, ...], software_version: str,
                         updatable: tuple[str, ...] = (),
                         includes: dict[str, tuple[str, ...]] | None = None,
                         revincludes: dict[str, tuple[str, ...]] | None = None,
                         operations: Iterable[Operation] = (),
                         definitions: dict[str, dict[str, str]] | None = None,
                         modifiers: dict[str, dict[str, list[str]]] | None = None,
                         cors: bool = False,
                         subscription_topics: tuple[str, ...] = ()) -> CapabilityStatement:
    """`searchable` maps each type to {parameter: FHIR search type} (search.parameter_types),
    so the statement lists exactly what search.PARAMETERS implements; `operations` are the
    `$operation` routes the server registered; `definitions` {type: {parameter: canonical
    URL}}; `modifiers` {type: {parameter: modifiers}} (search.parameter_modifiers); `cors`
    whether CORS headers are sent (CORS_ORIGINS is set); `subscription_topics`
    the topic canonicals a Subscription may name (Backport IG: listed on the Subscription
    resource entry).

    Raises:
        ValueError: an operation names a type that is not searchable here.
    """
    by_type = _operation_entries(base_url, operations)
    unknown = sorted(set(by_type) - set(searchable) - ({SUBSCRIPTION} if subscription_topics
                                                        else set()))
    if unknown:
        raise ValueError(f"operations on {', '.join(unknown)}, which are not served types; "
                         f"served: {', '.join(sorted(searchable))}")
    resources = [
        _resource_entry(resource_type, params, creatable=resource_type in creatable,
                        updatable=resource_type in updatable,
                        includes=(includes or {}).get(resource_type, ()),
                        revincludes=(revincludes or {}).get(resource_type, ()),
                        operations=by_type.get(resource_type, []),
                        definitions=(definitions or {}).get(resource_type, {}),
                        modifiers=(modifiers or {}).get(resource_type, {}))
        for resource_type, params in sorted(searchable.items())
    ]
    # Binary: read stored files; create stages a file for $upload (POST /fhir/Binary).
    resources.append({"type": BINARY, "interaction": [{"code": "read"}, {"code": "create"}]})
    resources += [{"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}],
                   "searchParam": [{"name": name, "type": param_type, "definition": url,
                                    "documentation": "modifiers: :missing"}
                                   for name, param_type, url in _CONFORMANCE_PARAMETERS]}
                  for kind in CONFORMANCE_TYPES]
    if subscription_topics:
        resources.append({
            "type": SUBSCRIPTION,
            "interaction": [{"code": "create"}, {"code": "read"}, {"code": "vread"},
                            {"code": "history-instance"}],
            # Each status change (requested -> active -> error) is a version.
            "versioning": "versioned", "readHistory": True,
            "conditionalRead": "full-support",
            "supportedProfile": ["http://hl7.org/fhir/uv/subscriptions-backport/"
                                 "StructureDefinition/backport-subscription"],
            "extension": [{"url": TOPIC_CANONICAL, "valueCanonical": topic}
                          for topic in subscription_topics],
            **({"operation": by_type[SUBSCRIPTION]} if SUBSCRIPTION in by_type else {})})
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
                "cors": cors,
                "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}]}],
                "extension": [{"url": SMART_OAUTH_URIS, "extension": [
                    {"url": "token", "valueUri": f"{base_url.removesuffix('/fhir')}/auth/token"},
                    {"url": "authorize",
                     "valueUri": f"{base_url.removesuffix('/fhir')}/auth/authorize"},
                ]}],
                "description": "Bearer tokens (JWT) from POST /auth/token: users sign in with "
                               "a password (admins also with a one-time code); hospital "
                               "systems use client_credentials (client secret or "
                               "private_key_jwt) and SMART v1 or v2 system scopes "
                               "(see /.well-known/smart-configuration).",
            },
            "resource": resources,
            "searchParam": [{"name": name, "type": kind, "documentation": text}
                            for name, kind, text in RESULT_PARAMETERS],
        }],
    })
