"""Parsing client JSON into validated FHIR models."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from csss_fhir.errors import InvalidInputError, ResourceValidationError


def model_class(resource_type: str) -> type:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def parse_resource(body: Any, resource_type: str) -> Any:
    """Validate `body` as a FHIR `resource_type`.

    Raises:
        InvalidInputError: the body is not a JSON object.
        ResourceValidationError: wrong resourceType or the resource fails validation (422).
    """
    if not isinstance(body, dict):
        raise InvalidInputError("the request body must be a JSON object (a FHIR resource)")
    found = body.get("resourceType")
    if found != resource_type:
        raise ResourceValidationError(
            f"resourceType is {found!r}; this endpoint expects {resource_type!r}"
        )
    try:
        resource = model_class(resource_type).model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or resource_type}: {e['msg']}"
            for e in err.errors()[:5]
        )
        first = err.errors()[0]["loc"] if err.errors() else ()
        expression = resource_type + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first)
        raise ResourceValidationError(
            f"{resource_type} is not valid FHIR R4: {problems}", expression=expression) from err
    check_required_bindings(body)
    return resource


# Required bindings of the elements in the types we accept (Patient, MedicationRequest),
# from the R4 specification. fhir.resources checks structure, not codes; HL7's JSON schema
# does, but is not needed at run time for these few tables. Keyed by (the element holding
# the code's parent, the code's element); the resource type is the parent at the top.
_EVENT_TIMING = frozenset({
    "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE",
    "EVE.early", "EVE.late", "NIGHT", "PHS", "HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM",
    "ACD", "ACV", "PC", "PCM", "PCD", "PCV"})
_UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
_GENDER = frozenset({"male", "female", "other", "unknown"})
REQUIRED_BINDINGS: dict[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): _GENDER,
    ("contact", "gender"): _GENDER,
    ("link", "type"): frozenset({"replaced-by", "replaces", "refer", "seealso"}),
    ("MedicationRequest", "status"): frozenset({
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
        "draft", "unknown"}),
    ("MedicationRequest", "intent"): frozenset({
        "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
        "instance-order", "option"}),
    ("MedicationRequest", "priority"): frozenset({"routine", "urgent", "asap", "stat"}),
    ("identifier", "use"): frozenset({"usual", "official", "temp", "secondary", "old"}),
    ("name", "use"): frozenset({"usual", "official", "temp", "nickname", "anonymous", "old",
                                "maiden"}),
    ("telecom", "system"): frozenset({"phone", "fax", "email", "pager", "url", "sms",
                                      "other"}),
    ("telecom", "use"): frozenset({"home", "work", "temp", "old", "mobile"}),
    ("address", "use"): frozenset({"home", "work", "temp", "old", "billing"}),
    ("address", "type"): frozenset({"postal", "physical", "both"}),
    ("repeat", "durationUnit"): _UNITS_OF_TIME,
    ("repeat", "periodUnit"): _UNITS_OF_TIME,
    ("repeat", "dayOfWeek"): frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"}),
    ("repeat", "when"): _EVENT_TIMING,
    ("*", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("text", "status"): frozenset({"generated", "extensions", "additional", "empty"}),
}


def check_required_bindings(body: dict[str, Any]) -> None:
    """Refuse a code outside the value set its element is bound to (required strength).

    Raises:
        ResourceValidationError: names the element (FHIRPath) and the codes allowed.
    """
    resource_type = str(body.get("resourceType"))
    _check_bindings(resource_type, resource_type, body)


def _check_bindings(parent: str, path: str, value: Any) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_bindings(parent, f"{path}[{index}]", item)
        return
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        if key in ("extension", "modifierExtension", "contained"):
            continue
        allowed = REQUIRED_BINDINGS.get((parent, key)) or REQUIRED_BINDINGS.get(("*", key))
        codes = child if isinstance(child, list) else [child]
        if allowed is not None and all(isinstance(c, str) for c in codes):
            for index, code in enumerate(codes):
                if code not in allowed:
                    where = f"{path}.{key}" + (f"[{index}]" if isinstance(child, list) else "")
                    raise ResourceValidationError(
                        f"{where} is {code!r}, which is not in its required value set; "
                        f"send one of: {', '.join(sorted(allowed))}", expression=where)
        else:
            _check_bindings(key, f"{path}.{key}", child)


def validate_for_create(body: Any, resource_type: str,
                        parse: Callable[[Any], Any]) -> OperationOutcome:
    """`$validate`: the OperationOutcome for a resource (or a Parameters with `resource`).

    `parse` is the same function create uses (from_fhir_patient, ...), so a resource that
    validates here is one create accepts, as far as the resource itself goes (references
    to other resources are checked when it is created). The outcome is returned with 200
    whether or not the resource is valid; its issues say which.

    Raises:
        InvalidInputError: the body is neither the resource nor Parameters holding it.
    """
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        parts = [p for p in body.get("parameter") or [] if isinstance(p, dict)]
        resource = next((p.get("resource") for p in parts if p.get("name") == "resource"), None)
        if resource is None:
            raise InvalidInputError("$validate takes the resource, or Parameters with a "
                                    "'resource' parameter")
        body = resource
    try:
        parse(body)
    except ResourceValidationError as err:
        issue: dict[str, Any] = {"severity": "error", "code": "invalid", "diagnostics": str(err)}
        if err.expression:
            issue["expression"] = [err.expression]
        return OperationOutcome.model_validate({"resourceType": "OperationOutcome",
                                                "issue": [issue]})
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "informational",
         "diagnostics": f"the {resource_type} is valid FHIR R4 and acceptable to this server"}]})
