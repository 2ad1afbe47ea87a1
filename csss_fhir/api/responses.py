"""FHIR HTTP plumbing: content negotiation, JSON bodies, ETag / Last-Modified / Location."""

from __future__ import annotations

import json
from email.utils import format_datetime
from typing import Any

from flask import Request, Response

from adapters.fhir.common import FHIR_JSON
from csss_fhir.errors import InvalidInputError, NotAcceptableError, UnsupportedMediaError

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def check_acceptable(req: Request) -> None:
    """406 unless the client accepts FHIR JSON (and did not ask for XML)."""
    fmt = req.args.get("_format")
    if fmt and fmt not in ("json", *JSON_TYPES):
        raise NotAcceptableError(f"_format={fmt} is not supported; this server speaks JSON only")
    accept = req.accept_mimetypes
    if not accept.provided:
        return
    # accept[t] is the quality the header gives t, wildcards included ("*/*" admits JSON).
    if not any(accept[t] for t in JSON_TYPES):
        raise NotAcceptableError("this server answers in application/fhir+json only")


def json_body(req: Request) -> Any:
    """The request's JSON body; 415 for other media types, 400 for malformed JSON."""
    mimetype = req.mimetype
    if mimetype not in JSON_TYPES:
        raise UnsupportedMediaError(
            f"Content-Type {mimetype or '(none)'} is not supported; send application/fhir+json")
    raw = req.get_data(cache=True)
    if not raw.strip():
        return None
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body; 400 for malformed JSON, and for JSON nested too deeply to parse
    (100,000 nested arrays exhaust the parser's recursion: a client error, not a 500)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise InvalidInputError("the body's JSON is nested too deeply; FHIR resources need "
                                "a few dozen levels at most") from err


def fhir_response(resource: Any, status: int = 200, *, location: bool = False) -> Response:
    """Serialise a fhir.resources model, with version headers when it has meta."""
    response = Response(resource.model_dump_json(), status=status, content_type=FHIR_JSON)
    meta = getattr(resource, "meta", None)
    if meta is not None and meta.versionId:
        response.headers["ETag"] = f'W/"{meta.versionId}"'
        if meta.lastUpdated:
            response.headers["Last-Modified"] = format_datetime(meta.lastUpdated, usegmt=True)
        if location and resource.id:
            response.headers["Location"] = (
                f"{base_url()}/{resource.get_resource_type()}/{resource.id}"
                f"/_history/{meta.versionId}")
    return response


def raw_fhir_response(body: bytes, *, version_id: int, last_modified: Any) -> Response:
    response = Response(body, content_type=FHIR_JSON)
    response.headers["ETag"] = f'W/"{version_id}"'
    response.headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    return response


def base_url() -> str:
    """The FHIR base of links and Location headers: BASE_URL (settings.public_root), never
    the request's Host header."""
    from csss_fhir.extensions import services

    return f"{services().settings.public_root}/fhir"
