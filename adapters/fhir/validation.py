"""Parsing client JSON into validated FHIR models."""

from __future__ import annotations

import importlib
from typing import Any

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
