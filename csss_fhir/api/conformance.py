"""The conformance resources behind /fhir/metadata: the OperationDefinition of each custom
operation and the SearchParameter of each of our own search parameters, at the canonical
URLs the CapabilityStatement names (issue 16 items 5 and 9). Read and searched by `url` and
`name`; public, like the CapabilityStatement.

Both are derived, never stored: operations from the URL map (`fhir.served_operations`) and
the parameter table in `adapters.fhir.operation_definition`; search parameters from
`search.PARAMETERS` and `search.OWN_PARAMETERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from adapters.fhir.bundle import SearchEntry, searchset
from adapters.fhir.common import instant
from adapters.fhir.narrative import with_narrative
from adapters.fhir.operation_definition import (
    OPERATIONS,
    definition_id,
    operation_definition,
)
from adapters.fhir.search_parameter import search_parameter
from adapters.fhir.shaping import SUMMARIES, shape
from csss_fhir import search
from csss_fhir.api.fhir import served_operations
from csss_fhir.api.responses import base_url, check_acceptable, conditional, fhir_response
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.search.query import whole_number
from csss_fhir.search.values import missing_flag

bp = Blueprint("fhir_conformance", __name__, url_prefix="/fhir")

SEARCHABLE_BY = ("_id", "url", "name")
# `:missing` on each: every one has an id, a url and a name, so `true` finds none.
MISSING = tuple(f"{name}:missing" for name in SEARCHABLE_BY)
# The result parameters the CapabilityStatement declares for every searchable type (fhirpy
# sends `_count` with every search).
RESULT_PARAMETERS = ("_count", "_offset", "_format", "_sort", "_summary", "_elements")
# Derived from the code this process runs, so a version changes only with a restart: each
# is version 1 of the process's start (meta.versionId/lastUpdated, as every resource has).
SERVED_SINCE = datetime.now(UTC)


@bp.before_request
def negotiate() -> None:
    check_acceptable(request)


def operation_definitions() -> dict[str, Any]:
    """{id: OperationDefinition} of every operation route that has a parameter table."""
    return {definition_id(op): _versioned(with_narrative(
                operation_definition(op, base_url=base_url())))
            for op in dict.fromkeys(served_operations()) if op.name in OPERATIONS}


def search_parameters() -> dict[str, Any]:
    """{id: SearchParameter} of our own search parameters."""
    found = {}
    for (resource_type, code), own in search.OWN_PARAMETERS.items():
        param = search.PARAMETERS[resource_type][code]
        resource = search_parameter(
            base_url=base_url(), resource_type=resource_type, code=code, kind=param.type,
            expression=own.expression, description=own.description,
            modifiers=param.all_modifiers)
        found[resource.id] = _versioned(with_narrative(resource))
    return found


def _versioned(resource: Any) -> Any:
    """The resource with the meta every served resource has (so reads send ETag and
    Last-Modified)."""
    data = resource.model_dump(mode="json", exclude_none=True)
    data["meta"] = {"versionId": "1", "lastUpdated": instant(SERVED_SINCE)}
    return type(resource).model_validate(data)


@bp.get("/OperationDefinition/<definition_id>")
def read_operation_definition(definition_id: str) -> Response:
    return _read("OperationDefinition", operation_definitions, definition_id)


@bp.get("/OperationDefinition")
def search_operation_definitions() -> Response:
    return _search("OperationDefinition", operation_definitions)


@bp.get("/SearchParameter/<parameter_id>")
def read_search_parameter(parameter_id: str) -> Response:
    return _read("SearchParameter", search_parameters, parameter_id)


@bp.get("/SearchParameter")
def search_search_parameters() -> Response:
    return _search("SearchParameter", search_parameters)


def _read(kind: str, served: Callable[[], dict[str, Any]], resource_id: str) -> Response:
    resource = served().get(resource_id)
    if resource is None:
        raise ResourceNotFoundError(f"{kind}/{resource_id} is not served here; GET "
                                    f"/fhir/{kind} lists the ones that are")
    return conditional(fhir_response(_shaped(resource)))


def _shaped(resource: Any) -> Any:
    """The resource cut as `_summary` / `_elements` ask (as every other type's are)."""
    summary = request.args.get("_summary")
    if summary is not None and summary not in SUMMARIES:
        raise InvalidInputError(f"_summary takes {', '.join(SUMMARIES)}, not {summary!r}")
    elements = [e.strip() for e in request.args.get("_elements", "").split(",") if e.strip()]
    return shape(resource, summary=summary, elements=tuple(elements) or None)


def _sorted(matches: list[Any]) -> list[Any]:
    """`_sort=name,-url`: by the declared parameters (and `_id`), `-` for descending."""
    keys = [k.strip() for k in request.args.get("_sort", "").split(",") if k.strip()]
    unknown = [k for k in keys if k.lstrip("-") not in SEARCHABLE_BY]
    if unknown:
        raise InvalidInputError(f"_sort takes {', '.join(SEARCHABLE_BY)} (- for descending), "
                                f"not {', '.join(unknown)}")
    for key in reversed(keys):  # stable sorts, the last key first
        field = "id" if key.lstrip("-") == "_id" else key.lstrip("-")
        matches = sorted(matches, key=lambda r, f=field: getattr(r, f) or "",
                         reverse=key.startswith("-"))
    return matches


def _search(kind: str, served: Callable[[], dict[str, Any]]) -> Response:
    """Match `_id` and `url` (exact) and `name` (starts with, case-insensitive, as FHIR
    strings do), each also `:missing`; sort, page and cut as every search does."""
    unknown = sorted({name for name in request.args if name not in SEARCHABLE_BY
                      and name not in RESULT_PARAMETERS and name not in MISSING})
    if unknown:
        raise InvalidInputError(f"{kind} is searched by {', '.join(SEARCHABLE_BY)}, not "
                                f"{', '.join(unknown)}")
    matches = list(served().values())
    for ids in request.args.getlist("_id"):
        matches = [r for r in matches if r.id in ids.split(",")]
    for url in request.args.getlist("url"):
        matches = [r for r in matches if r.url == url]
    for name in request.args.getlist("name"):
        matches = [r for r in matches if r.name.lower().startswith(name.lower())]
    for parameter in MISSING:
        for flag in request.args.getlist(parameter):
            if missing_flag(parameter.partition(":")[0], flag):
                matches = []
    matches = _sorted(matches)
    count = whole_number("_count", request.args.get("_count", str(search.DEFAULT_COUNT)),
                         minimum=0, maximum=search.MAX_COUNT)
    if request.args.get("_summary") == "count":
        count = 0
    offset = whole_number("_offset", request.args.get("_offset", "0"), minimum=0,
                          maximum=len(matches))
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "_offset"]
    url = f"{base_url()}/{kind}"
    links = {"self": f"{url}?{urlencode(list(request.args.items(multi=True)))}"
             if request.args else url}
    if offset + count < len(matches) and count:
        links["next"] = f"{url}?{urlencode([*kept, ('_offset', str(offset + count))])}"
    if offset:
        links["previous"] = f"{url}?{urlencode([*kept, ('_offset', str(max(0, offset - count)))])}"
    return fhir_response(searchset(
        entries=[SearchEntry(_shaped(r)) for r in matches[offset:offset + count]],
        total=len(matches),
        base_url=base_url(), links=links))
