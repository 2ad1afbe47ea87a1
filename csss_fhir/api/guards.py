"""Checks every request passes before any view runs, for the API and the UI alike."""

from __future__ import annotations

from flask import request

from csss_fhir.errors import InvalidInputError

NUL = "\x00"


def refuse_nul_characters() -> None:
    """Refuse a NUL character in the path, the query, a form or a JSON body.

    No text a person or a FHIR client means contains one, and PostgreSQL cannot store it in a
    text column: without this check `?x=%00` reached the database and answered 500.
    Uploaded files (multipart, DICOM, Binary) are bytes and are not looked at.

    Raises:
        InvalidInputError: a NUL was found (400, naming where).
    """
    if NUL in request.path:
        raise InvalidInputError("the address contains a NUL character (%00); remove it")
    if any(NUL in key or NUL in value for key, value in request.args.items(multi=True)):
        raise InvalidInputError("a search or query parameter contains a NUL character "
                                "(%00); remove it")
    if request.mimetype == "application/x-www-form-urlencoded" and any(
            NUL in key or NUL in value for key, value in request.form.items(multi=True)):
        raise InvalidInputError("a form field contains a NUL character; remove it")
    if request.mimetype.endswith("json") and _within_default_limit():
        body = request.get_data(cache=True)
        if b"\\u0000" in body or b"\x00" in body:
            raise InvalidInputError("the JSON body contains a NUL character (\\u0000); "
                                    "remove it")


def _within_default_limit() -> bool:
    """Whether reading the body now is safe: a body past the default limit is the view's to
    judge (a FHIR `$upload` raises the limit for its base64 Attachment, which holds no NUL)."""
    limit = request.max_content_length
    return limit is None or (request.content_length or 0) <= limit
