"""/auth: tokens and one-time codes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from csss_fhir.errors import InvalidInputError, UnsupportedMediaError
from csss_fhir.models import db
from csss_fhir.security import authentication
from csss_fhir.services import services

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _credentials() -> dict:
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidInputError("the body must be a JSON object")
        return body
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    raise UnsupportedMediaError("send application/json (or a form)")


@bp.post("/token")
def token() -> Response:
    body = _credentials()
    grant = authentication.login(db.session, services(), username=body.get("username"),
                                 password=body.get("password"), code=body.get("otp"))
    response = jsonify(access_token=grant.access_token, token_type="Bearer",
                       expires_in=grant.expires_in, role=grant.role)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/otp")
def one_time_code() -> Response:
    body = _credentials()
    authentication.request_code(db.session, services(), username=body.get("username"),
                                password=body.get("password"))
    return jsonify(status="sent", expires_in=services().settings.otp_expire_minutes * 60), 202
