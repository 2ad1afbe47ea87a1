"""FHIR Parameters in, plain values out: operation inputs."""

from __future__ import annotations

from typing import Any

from csss_fhir.errors import InvalidInputError

_VALUE_KEYS = ("valueString", "valueBoolean", "valueCode", "valueMarkdown", "valueInteger",
               "valueDecimal")


class OperationParameters:
    """Operation inputs from a Parameters resource (or a form / plain JSON object)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    @classmethod
    def from_body(cls, body: Any) -> OperationParameters:
        """Accept a FHIR Parameters resource, an empty body, or a flat JSON object.

        Raises:
            InvalidInputError: any other shape.
        """
        if body is None or body == {}:
            return cls({})
        if not isinstance(body, dict):
            raise InvalidInputError("the body must be a FHIR Parameters resource")
        if body.get("resourceType") == "Parameters":
            values: dict[str, Any] = {}
            for param in body.get("parameter") or []:
                if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                    raise InvalidInputError("each Parameters.parameter needs a name")
                found = [k for k in _VALUE_KEYS if k in param]
                if len(found) != 1:
                    raise InvalidInputError(
                        f"parameter {param['name']!r} needs exactly one value "
                        f"({', '.join(_VALUE_KEYS[:3])})"
                    )
                values[param["name"]] = param[found[0]]
            return cls(values)
        if "resourceType" in body:
            raise InvalidInputError(
                f"resourceType {body['resourceType']!r}; this operation takes Parameters"
            )
        return cls(dict(body))

    def optional_string(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInputError(f"parameter {name!r} must be a string")
        value = value.strip()
        return value or None

    def required_string(self, name: str) -> str:
        value = self.optional_string(name)
        if value is None:
            raise InvalidInputError(f"parameter {name!r} is required and must not be empty")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.optional_boolean(name)
        return default if value is None else value

    def optional_boolean(self, name: str) -> bool | None:
        """True or false (also the strings "true", "false"); None when not given."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidInputError(f"parameter {name!r} must be true or false", field=name)
