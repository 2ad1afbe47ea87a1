"""FHIR Binary in and out: a file posted for a later $upload (issue 16 item 5).

`POST /fhir/Binary` takes the raw bytes with their Content-Type, or a Binary resource whose
`data` holds them in base64; either way the file must be one $upload takes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.binary import Binary

from adapters.fhir.common import instant
from adapters.fhir.parameters import UPLOAD_CONTENT_TYPES, decode_base64
from csss_fhir.errors import InvalidInputError, UnsupportedMediaError


def upload_content_type(content_type: str | None) -> str:
    """The media type without parameters, if $upload takes it.

    Raises:
        UnsupportedMediaError: anything but JPEG, PNG or DICOM.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in UPLOAD_CONTENT_TYPES:
        raise UnsupportedMediaError(
            f"a Binary of type {kind or '(none)'} cannot become a scan; post "
            f"{', '.join(UPLOAD_CONTENT_TYPES)} (raw, or as a FHIR Binary with base64 data)")
    return kind


def from_fhir_binary(body: Any, *, max_bytes: int) -> tuple[bytes, str]:
    """(bytes, content type) of a posted Binary resource.

    Raises:
        InvalidInputError: not a Binary, no `data` (a `url` is not fetched), bad base64;
        UnsupportedMediaError, PayloadTooLargeError.
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Binary":
        found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise InvalidInputError(f"the body is {found!r}; POST /fhir/Binary takes a Binary "
                                "resource, or the file's raw bytes with their Content-Type")
    content_type = upload_content_type(body.get("contentType"))
    encoded = body.get("data")
    if not isinstance(encoded, str) or not encoded.strip():
        raise InvalidInputError("the Binary has no data; put the file in Binary.data, "
                                "base64-encoded")
    return decode_base64(encoded, max_bytes, what="Binary.data"), content_type


def to_fhir_staged_binary(binary_id: str, content_type: str, created_at: datetime) -> Binary:
    """The created Binary as answered to its POST: its id and type, not the bytes back."""
    return Binary.model_validate({
        "resourceType": "Binary", "id": binary_id,
        "meta": {"versionId": "1", "lastUpdated": instant(created_at)},
        "contentType": content_type,
    })
