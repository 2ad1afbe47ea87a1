"""/auth: tokens (password + second factor, or client_credentials), one-time codes, logout;
and the SMART configuration that tells hospital systems where to get a token."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, Response, jsonify, request

from csss_fhir.api.responses import base_url, parse_json
from csss_fhir.errors import CsssError, InvalidInputError, UnsupportedMediaError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security import authentication, client_assertions, clients, scopes
from csss_fhir.security.errors import (
    InvalidGrantError,
    InvalidScopeError,
    NotAuthenticatedError,
    TooManyAttemptsError,
    UnsupportedGrantTypeError,
)
from csss_fhir.security.ratelimit import per_account, per_address

bp = Blueprint("auth", __name__, url_prefix="/auth")
well_known = Blueprint("well_known", __name__, url_prefix="/.well-known")

GRANT_TYPES = ("password", "client_credentials")

# RFC 6749 §5.2: an OAuth grant request (one that names its grant_type) is refused with
# {"error", "error_description"}, not an OperationOutcome: OAuth clients parse that shape.
# The JSON password login of API.md keeps its OperationOutcomes (details otp-required...).
_OAUTH_ERRORS: dict[type[CsssError], tuple[HTTPStatus, str]] = {
    InvalidGrantError: (HTTPStatus.BAD_REQUEST, "invalid_grant"),
    NotAuthenticatedError: (HTTPStatus.UNAUTHORIZED, "invalid_client"),
    InvalidScopeError: (HTTPStatus.BAD_REQUEST, "invalid_scope"),
    UnsupportedGrantTypeError: (HTTPStatus.BAD_REQUEST, "unsupported_grant_type"),
    # Not in RFC 6749: a locked-out source is told to wait (429 and Retry-After).
    TooManyAttemptsError: (HTTPStatus.TOO_MANY_REQUESTS, "invalid_request"),
    CsssError: (HTTPStatus.BAD_REQUEST, "invalid_request"),
}


def _credentials() -> dict:
    if request.mimetype == "application/json":
        body = parse_json(request.get_data(cache=True))
        if not isinstance(body, dict):
            raise InvalidInputError("the body must be a JSON object")
        return body
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    raise UnsupportedMediaError("send application/json (or a form)")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def oauth_error(error: CsssError) -> Response:
    """Render a refused grant request as RFC 6749 §5.2 JSON."""
    status, code = next(_OAUTH_ERRORS[kind] for kind in type(error).__mro__
                        if kind in _OAUTH_ERRORS)
    response = _no_store(jsonify(error=code, error_description=str(error)))
    response.status_code = status
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Basic realm="csss-fhir"'
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def token_url() -> str:
    """This server's token endpoint, as clients name it (a client assertion's `aud`)."""
    return f"{base_url().removesuffix('/fhir')}/auth/token"


def _grant(body: dict, grant_type: str) -> authentication.TokenGrant:
    if grant_type == "client_credentials":
        client_id, client_secret = body.get("client_id"), body.get("client_secret")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id = request.authorization.username
            client_secret = request.authorization.password
        return authentication.client_login(
            db.session, services(), client_id=client_id, client_secret=client_secret,
            scope=body.get("scope"), assertion_type=body.get("client_assertion_type"),
            assertion=body.get("client_assertion"), token_url=token_url())
    try:
        return authentication.login(db.session, services(), username=body.get("username"),
                                    password=body.get("password"), code=body.get("otp"))
    except NotAuthenticatedError as err:
        # The resource owner's credentials, not the client's, were wrong (RFC 6749 §5.2).
        raise InvalidGrantError(str(err), details=err.details) from err


@bp.post("/token")
@per_address
@per_account
def token() -> Response:
    body = _credentials()
    grant_type = body.get("grant_type")
    if grant_type is None:  # API.md's JSON password login: refusals are OperationOutcomes
        grant = authentication.login(db.session, services(), username=body.get("username"),
                                     password=body.get("password"), code=body.get("otp"))
        return _no_store(jsonify(access_token=grant.access_token, token_type="Bearer",
                                 expires_in=grant.expires_in, role=grant.role))
    try:
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantTypeError(
                f"grant_type {str(grant_type)[:40]!r} is not supported; use one of "
                f"{', '.join(GRANT_TYPES)}")
        grant = _grant(body, grant_type)
    except CsssError as err:
        return oauth_error(err)
    answer = {"access_token": grant.access_token, "token_type": "Bearer",
              "expires_in": grant.expires_in, "role": grant.role}
    if grant.scope is not None:
        answer["scope"] = grant.scope
    return _no_store(jsonify(answer))


@bp.post("/otp")
@per_address
@per_account
def one_time_code() -> Response:
    body = _credentials()
    authentication.request_code(db.session, services(), username=body.get("username"),
                                password=body.get("password"))
    return jsonify(status="sent", expires_in=services().settings.otp_expire_minutes * 60), 202


@bp.post("/logout")
def logout() -> Response:
    authentication.logout(db.session)
    return _no_store(jsonify(status="revoked"))


@well_known.get("/smart-configuration")
def smart_configuration() -> Response:
    return jsonify(
        token_endpoint=token_url(),
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post",
                                               "private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported=list(client_assertions.ALGORITHMS),
        scopes_supported=[*clients.SUPPORTED_SCOPES,
                          *(scopes.v2(scope) for scope in clients.SUPPORTED_SCOPES)],
        capabilities=["client-confidential-symmetric", "client-confidential-asymmetric",
                      "permission-v1", "permission-v2"],
    )
