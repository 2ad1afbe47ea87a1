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
        return model_class(resource_type).model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or resource_type}: {e['msg']}"
            for e in err.errors()[:5]
        )
        raise ResourceValidationError(f"{resource_type} is not valid FHIR R4: {problems}") from err


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
        return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": str(err)}]})
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "informational",
         "diagnostics": f"the {resource_type} is valid FHIR R4 and acceptable to this server"}]})
