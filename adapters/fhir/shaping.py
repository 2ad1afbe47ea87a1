"""`_summary` and `_elements`: a served resource cut to what the client asked for.

A cut resource is tagged SUBSETTED (meta.tag) so no one mistakes it for the whole record,
and keeps its mandatory elements (FHIR: servers SHOULD return them whether asked or not),
so it still parses as its type.
"""

from __future__ import annotations

from typing import Any

from adapters.fhir.narrative import narrative

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}
SUMMARIES = ("true", "text", "data", "count", "false")
_ALWAYS = ("resourceType", "id", "meta")


def _fields(resource: Any, flag: str) -> set[str]:
    """The JSON names of the resource's elements whose field carries `flag`."""
    return {field.alias or name for name, field in type(resource).model_fields.items()
            if (field.json_schema_extra or {}).get(flag)}


def _required(resource: Any) -> set[str]:
    """The JSON names of the resource's mandatory elements (cardinality 1..): a complex one
    is a required model field, a primitive one carries `element_required` (its value may
    stand in `_name`, so the model cannot require the field itself), and each choice of a
    mandatory `[x]` (`medication[x]`) carries `one_of_many_required`."""
    return {field.alias or name for name, field in type(resource).model_fields.items()
            if field.is_required()} | _fields(resource, "element_required") | \
        _fields(resource, "one_of_many_required")


def shape(resource: Any, *, summary: str | None = None,
          elements: tuple[str, ...] | None = None) -> Any:
    """The resource as `_summary` / `_elements` ask (both None or `false`: unchanged).

    `summary` is one of SUMMARIES; `elements` top-level element names (unknown ones are
    simply absent). Returns a model of the same type.
    """
    if summary in (None, "false", "count") and not elements:
        return resource
    data = resource.model_dump(mode="json", exclude_none=True)
    required = _required(resource)
    if summary == "data":
        data.pop("text", None)
        return type(resource).model_validate(data)
    if summary == "true":
        wanted = _fields(resource, "summary_element_property")
    elif summary == "text":
        wanted = {"text"}
    else:
        wanted = set(elements or ())
    kept = {key: value for key, value in data.items()
            if key in _ALWAYS or key in wanted or key in required}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    if "text" in kept and summary != "text":
        kept["text"] = narrative(kept)  # the narrative says only what is left
    return type(resource).model_validate(kept)
