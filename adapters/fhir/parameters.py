"""FHIR Parameters in, plain values out: operation inputs, and $upload's file as an
Attachment (or a reference to a Binary posted before)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from csss_fhir.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaError

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


# --- $upload's Parameters: the file as an Attachment --------------------------------------

UPLOAD_CONTENT_TYPES = ("image/jpeg", "image/png", "application/dicom")


@dataclass(frozen=True)
class UploadParameters:
    """$upload's inputs from a Parameters body: the file inline (`data`) or as a reference
    to a Binary posted before (`binary_id`), and the form's other fields."""

    data: bytes | None
    binary_id: str | None
    patient_id: str | None
    modality: str | None
    body_site: str | None
    description: str | None


def upload_parameters(body: Any, *, max_bytes: int) -> UploadParameters:
    """Read `file` (valueAttachment, or valueReference `Binary/<id>`), `patient`
    (valueReference or valueString), `modality`, `bodySite` and `description`.

    Raises:
        InvalidInputError: not a Parameters resource, no or two `file` parameters, a
            malformed Attachment or base64 `data`.
        UnsupportedMediaError: the Attachment's contentType is not JPEG, PNG or DICOM.
        PayloadTooLargeError: the decoded file is larger than `max_bytes`.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise InvalidInputError(f"the body is {found!r}; $upload takes a Parameters resource "
                                "with a 'file' parameter (or multipart/form-data)")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for param in body.get("parameter") or []:
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise InvalidInputError("each Parameters.parameter needs a name")
        by_name.setdefault(param["name"], []).append(param)
    files = by_name.get("file", [])
    if len(files) != 1:
        raise InvalidInputError(f"$upload takes exactly one 'file' parameter, found "
                                f"{len(files)}; send its valueAttachment (contentType and "
                                "base64 data) or a valueReference to a Binary")
    data, binary_id = _upload_file(files[0], max_bytes)
    patient = _one(by_name, "patient")
    patient_id = None
    if patient is not None:
        reference = patient.get("valueReference")
        text = reference.get("reference") if isinstance(reference, dict) \
            else patient.get("valueString")
        if not isinstance(text, str):
            raise InvalidInputError("parameter 'patient' takes a valueReference "
                                    "(Patient/<id>) or a valueString (the Patient's id)")
        patient_id = text.strip().removeprefix("Patient/") or None
    return UploadParameters(data=data, binary_id=binary_id, patient_id=patient_id,
                            modality=_text(by_name, "modality"),
                            body_site=_text(by_name, "bodySite"),
                            description=_text(by_name, "description"))


def _upload_file(param: dict[str, Any], max_bytes: int) -> tuple[bytes | None, str | None]:
    """(bytes, None) for an Attachment, (None, Binary id) for a reference."""
    reference = param.get("valueReference")
    if isinstance(reference, dict):
        text = reference.get("reference")
        if not isinstance(text, str) or not text.startswith("Binary/") or \
                not text.removeprefix("Binary/"):
            raise InvalidInputError(f"'file' references {text!r}; a file reference names a "
                                    "Binary posted before, as Binary/<id>")
        return None, text.removeprefix("Binary/")
    attachment = param.get("valueAttachment")
    if not isinstance(attachment, dict):
        raise InvalidInputError("parameter 'file' needs a valueAttachment (contentType and "
                                "base64 data) or a valueReference to a Binary")
    content_type = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise UnsupportedMediaError(
            f"the file's contentType is {content_type or '(none)'}; $upload takes "
            f"{', '.join(UPLOAD_CONTENT_TYPES)}")
    encoded = attachment.get("data")
    if not isinstance(encoded, str) or not encoded.strip():
        raise InvalidInputError("the 'file' Attachment has no data; put the file in "
                                "Attachment.data, base64-encoded (a url is not fetched)")
    return decode_base64(encoded, max_bytes, what="the 'file' Attachment's data"), None


def base64_length(size: int) -> int:
    """The length of `size` bytes in base64 (padded, unwrapped)."""
    return (size + 2) // 3 * 4


def decode_base64(encoded: str, max_bytes: int, *, what: str) -> bytes:
    """Decode base64 text of at most `max_bytes` decoded bytes, refused before decoding when
    its length alone says it is too large.

    Raises:
        PayloadTooLargeError, InvalidInputError (not base64).
    """
    compact = "".join(encoded.split())  # base64 may be wrapped at 76 characters
    if len(compact) // 4 * 3 - compact[-2:].count("=") > max_bytes:
        raise PayloadTooLargeError(f"the file is larger than {max_bytes // (1024 * 1024)} MB "
                                   "(decoded); send a smaller one")
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as err:
        raise InvalidInputError(f"{what} is not valid base64 ({err}); encode the file's "
                                "bytes with standard base64 (RFC 4648 section 4)") from err


def _one(by_name: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any] | None:
    found = by_name.get(name, [])
    if len(found) > 1:
        raise InvalidInputError(f"parameter {name!r} is given {len(found)} times; send it once")
    return found[0] if found else None


def _text(by_name: dict[str, list[dict[str, Any]]], name: str) -> str | None:
    param = _one(by_name, name)
    if param is None:
        return None
    values = [param[key] for key in ("valueString", "valueCode") if key in param]
    if len(values) != 1 or not isinstance(values[0], str):
        raise InvalidInputError(f"parameter {name!r} takes a valueString (or valueCode)")
    return values[0].strip() or None
