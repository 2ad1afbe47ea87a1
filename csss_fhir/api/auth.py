"""/auth: tokens (password + second factor, or client_credentials), one-time codes, logout;
and the SMART configuration that tells hospital systems where to get a token."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from csss_fhir.api.responses import base_url, parse_json
from csss_fhir.errors import InvalidInputError, UnsupportedMediaError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security import authentication, clients
from csss_fhir.security.ratelimit import per_account, per_address

bp = Blueprint("auth", __name__, url_prefix="/auth")
well_known = Blueprint("well_known", __name__, url_prefix="/.well-known")

GRANT_TYPES = ("password", "client_credentials")


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


@bp.post("/token")
@per_address
@per_account
def token() -> Response:
    body = _credentials()
    grant_type = body.get("grant_type") or "password"
    if grant_type not in GRANT_TYPES:
        raise InvalidInputError(f"grant_type must be one of {', '.join(GRANT_TYPES)}")
    if grant_type == "client_credentials":
        client_id, client_secret = body.get("client_id"), body.get("client_secret")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id = request.authorization.username
            client_secret = request.authorization.password
        grant = authentication.client_login(db.session, services(), client_id=client_id,
                                            client_secret=client_secret,
                                            scope=body.get("scope"))
        return _no_store(jsonify(access_token=grant.access_token, token_type="Bearer",
                                 expires_in=grant.expires_in, role=grant.role,
                                 scope=grant.scope))
    grant = authentication.login(db.session, services(), username=body.get("username"),
                                 password=body.get("password"), code=body.get("otp"))
    return _no_store(jsonify(access_token=grant.access_token, token_type="Bearer",
                             expires_in=grant.expires_in, role=grant.role))


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
    root = base_url().removesuffix("/fhir")
    return jsonify(
        token_endpoint=f"{root}/auth/token",
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
        scopes_supported=list(clients.SUPPORTED_SCOPES),
        capabilities=["client-confidential-symmetric", "permission-v1"],
    )
