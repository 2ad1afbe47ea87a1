"""The one table that turns refusals into HTTP status codes and OperationOutcomes.

Registered on the app (not on a blueprint, which would miss routing 404/405) and selected by
path: everything under /fhir and /auth answers in FHIR JSON, never an HTML error page.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from adapters.fhir.common import FHIR_JSON
from adapters.fhir.outcome import operation_outcome
from csss_fhir.errors import (
    ConflictError,
    CsssError,
    InvalidInputError,
    NotAcceptableError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ResourceNotFoundError,
    ResourceValidationError,
    UnprocessableContentError,
    UnsupportedMediaError,
)
from csss_fhir.security.errors import (
    AccessDeniedError,
    NotAuthenticatedError,
    TooManyAttemptsError,
)
from csss_fhir.workflow.errors import StepNotAllowedError

log = logging.getLogger(__name__)

_STATUS_AND_CODE: dict[type[CsssError], tuple[HTTPStatus, str]] = {
    NotAuthenticatedError: (HTTPStatus.UNAUTHORIZED, "login"),
    TooManyAttemptsError: (HTTPStatus.TOO_MANY_REQUESTS, "throttled"),
    AccessDeniedError: (HTTPStatus.FORBIDDEN, "forbidden"),
    StepNotAllowedError: (HTTPStatus.FORBIDDEN, "forbidden"),
    ResourceNotFoundError: (HTTPStatus.NOT_FOUND, "not-found"),
    ConflictError: (HTTPStatus.CONFLICT, "conflict"),
    PreconditionFailedError: (HTTPStatus.PRECONDITION_FAILED, "conflict"),
    PayloadTooLargeError: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-costly"),
    UnsupportedMediaError: (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "not-supported"),
    NotAcceptableError: (HTTPStatus.NOT_ACCEPTABLE, "not-supported"),
    ResourceValidationError: (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid"),
    UnprocessableContentError: (HTTPStatus.UNPROCESSABLE_ENTITY, "processing"),
    InvalidInputError: (HTTPStatus.BAD_REQUEST, "invalid"),
    CsssError: (HTTPStatus.BAD_REQUEST, "invalid"),  # fallback for new refusals
}

_HTTP_CODES = {
    404: "not-found", 405: "not-supported", 406: "not-supported", 413: "too-costly",
    415: "not-supported", 429: "throttled", 401: "login", 403: "forbidden",
}


def status_of(error: CsssError) -> HTTPStatus:
    return next(_STATUS_AND_CODE[k] for k in type(error).__mro__ if k in _STATUS_AND_CODE)[0]


def outcome_response(status: int, code: str, diagnostics: str, details: str | None = None,
                     expression: str | None = None) -> Response:
    body = operation_outcome(code, diagnostics, details=details,
                             expression=expression).model_dump_json()
    response = Response(body, status=status, content_type=FHIR_JSON)
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="csss-fhir"'
    return response


def refusal_outcome(error: CsssError) -> Response:
    """Render a refusal as an OperationOutcome: the one place refusals become HTTP."""
    status, code = next(
        _STATUS_AND_CODE[kind] for kind in type(error).__mro__ if kind in _STATUS_AND_CODE
    )
    response = outcome_response(status, code, str(error), error.details,
                                getattr(error, "expression", None))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _is_api_path() -> bool:
    return request.path.startswith(("/fhir", "/auth"))


def init_app(app: Flask) -> None:
    @app.errorhandler(CsssError)
    def handle_refusal(error: CsssError):
        if _is_api_path() or "web_error_handler" not in app.extensions:
            return refusal_outcome(error)
        return app.extensions["web_error_handler"](error)

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException):
        if not _is_api_path():
            return error
        status = error.code or 500
        response = outcome_response(status, _HTTP_CODES.get(status, "processing"),
                                    error.description or HTTPStatus(status).phrase)
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def handle_bug(error: Exception):
        log.exception("unhandled error", extra={"path": request.path})
        if _is_api_path():
            return outcome_response(500, "exception",
                                    "internal error; the incident was logged")
        return Response("Internal error; the incident was logged.", status=500,
                        content_type="text/plain; charset=utf-8")
