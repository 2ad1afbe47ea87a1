"""SearchParameter resources for the search parameters R4 does not define as we implement
them (issue 16 item 9): the CapabilityStatement's `definition` of each such parameter is
served at /fhir/SearchParameter/<type>-<code>. The standard ones name R4's canonical URL.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir.resources.R4B.searchparameter import SearchParameter

from adapters.fhir.capability import search_parameter_url
from adapters.fhir.common import instant
from adapters.fhir.operation_definition import DEFINITIONS_DATE

# Our modifier names that are R4 codes as they are; a type name (`:Patient`) is R4's `type`.
_R4_MODIFIERS = frozenset({"missing", "exact", "contains", "not", "text", "in", "not-in",
                           "below", "above", "identifier", "ofType"})


def search_parameter(*, base_url: str, resource_type: str, code: str, kind: str,
                     expression: str, description: str,
                     modifiers: Iterable[str] = ()) -> SearchParameter:
    """Our SearchParameter `code` on `resource_type` (`kind`: its FHIR search type)."""
    r4_modifiers = sorted({m if m in _R4_MODIFIERS else "type" for m in modifiers})
    resource = {
        "resourceType": "SearchParameter",
        "id": f"{resource_type}-{code}",
        "url": search_parameter_url(base_url, resource_type, code),
        "version": "1",
        "name": "".join(part[0].upper() + part[1:] for part in f"{resource_type} {code}"
                        .replace("-", " ").split()),
        "status": "active",
        "date": instant(DEFINITIONS_DATE),
        "publisher": "CSSS-FHIR",
        "description": description,
        "code": code,
        "base": [resource_type],
        "type": kind,
        "expression": expression,
        "xpathUsage": "normal",
        "multipleOr": True,
        "multipleAnd": True,
        "modifier": r4_modifiers or None,
    }
    if kind == "reference":
        resource["target"] = ["Patient"]
    return SearchParameter.model_validate(resource)
