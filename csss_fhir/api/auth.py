"""/auth: tokens (password + second factor, client_credentials, or a SMART app's
authorization code), the app approval page, EHR launch values, one-time codes, logout; and
the SMART configuration that tells hospital systems and apps where to get a token."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from csss_fhir import search
from csss_fhir.api.responses import base_url, parse_json
from csss_fhir.errors import CsssError, InvalidInputError, UnsupportedMediaError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security import (
    access,
    authentication,
    client_assertions,
    clients,
    headers,
    scopes,
    smart,
)
from csss_fhir.security.actor import Actor
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

GRANT_TYPES = ("password", "client_credentials", "authorization_code")

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


def authorize_url() -> str:
    """Where a SMART app sends the user to approve it."""
    return f"{base_url().removesuffix('/fhir')}/auth/authorize"


def _grant(body: dict, grant_type: str) -> authentication.TokenGrant:
    client_id, client_secret = body.get("client_id"), body.get("client_secret")
    if request.authorization is not None and request.authorization.type == "basic":
        client_id = request.authorization.username
        client_secret = request.authorization.password
    if grant_type == "authorization_code":
        return authentication.app_login(
            db.session, services(), client_id=client_id, client_secret=client_secret,
            code=body.get("code"), redirect_uri=body.get("redirect_uri"),
            verifier=body.get("code_verifier"),
            assertion_type=body.get("client_assertion_type"),
            assertion=body.get("client_assertion"), token_url=token_url())
    if grant_type == "client_credentials":
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
    if grant.patient is not None:
        answer["patient"] = grant.patient
    return _no_store(jsonify(answer))


def _authorization_request() -> smart.AuthorizationRequest:
    params = request.args.to_dict() if request.method == "GET" else request.form.to_dict()
    return smart.parse_request(db.session, params, fhir_base=base_url())


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """SMART App Launch: the signed-in web user approves an app (GET shows, POST decides).

    A bad client or redirect URI is answered here (never redirected); every other refusal
    goes back to the app's redirect URI as `error` (RFC 6749 §4.1.2.1).
    """
    try:
        app_request = _authorization_request()
    except smart.AuthorizeError as err:
        return redirect(err.location())
    try:
        # The web session's cookie, never a bearer header: the user approves in a browser.
        # On POST, flask-jwt-extended checks the form's csrf_token against the cookie.
        actor = authentication.current_actor(locations=["cookies"])
    except NotAuthenticatedError:
        return redirect(url_for("web_auth.login_form", next=request.full_path))
    try:
        if request.method == "GET" and app_request.needs_patient and not actor.is_patient:
            return Response(_patient_picker(actor, app_request))
        if request.method == "GET":
            offered = smart.offered(db.session, actor, app_request)
            page = Response(render_template(
                "web/authorize.html", app=app_request.client, actor=actor,
                scopes=offered, fields=request.args, wording=_scope_wording(offered),
                writes=bool(smart.write_permissions(" ".join(offered))),
                patient=smart.context_patient(db.session, actor, app_request)))
            page.headers["Content-Security-Policy"] = headers.policy_with_form_target(
                smart.origin_of(app_request.redirect_uri))
            return page
        if request.form.get("decision") != "approve":
            return redirect(smart.denial(app_request))
        return redirect(smart.approve(db.session, actor, app_request))
    except smart.AuthorizeError as err:
        return redirect(err.location())


_VERBS = {"r": "read", "c": "create", "u": "update", "d": "delete"}


def _scope_wording(offered: tuple[str, ...]) -> dict[str, str]:
    """What each app scope lets the app do, in words ("Read, create Observation records")."""
    wording = {}
    for scope in offered:
        parsed = smart.app_scope(scope)
        if parsed is None:
            continue
        verbs = ", ".join(verb for letter, verb in _VERBS.items()
                          if letter in parsed.permissions)
        kinds = "every kind of record your role allows" if parsed.resource_type == "*" \
            else f"{parsed.resource_type} records"
        wording[scope] = f"{verbs.capitalize()} {kinds}"
    return wording


PICKER_SEARCH = "patient_search"
PICKER_LIMIT = 20


def _patient_picker(actor: Actor, app_request: smart.AuthorizationRequest) -> str:
    """The page a staff user picks the patient on before approving a standalone
    `launch/patient` (no JavaScript: each choice is a form that comes back here with
    `patient`). Searched by name or MRN through the FHIR search, so it lists only the
    patients this user may see."""
    text = request.args.get(PICKER_SEARCH, "").strip()
    found: dict[str, object] = {}
    if text:
        for name, value in (("name", text), ("identifier", text)):
            result = search.search(db.session, search.SearchRequest(
                resource_type="Patient", params=[(name, value), ("_count", str(PICKER_LIMIT))],
                compartment=access.compartment(actor), strict=True))
            found.update((row.id, row) for row in result.rows)
    fields = {k: v for k, v in request.args.items() if k not in (PICKER_SEARCH, "patient")}
    return render_template("web/authorize_patient.html", app=app_request.client, actor=actor,
                           fields=fields, search=text, patients=list(found.values()),
                           search_field=PICKER_SEARCH)


@bp.post("/launch")
def launch() -> Response:
    """An EHR launch value for a patient, for the signed-in staff user to open an app with."""
    body = _credentials()
    value = smart.create_launch(db.session, authentication.current_actor(),
                                body.get("patient"))
    return _no_store(jsonify(launch=value, iss=base_url(),
                             expires_in=int(smart.LAUNCH_LIFETIME.total_seconds()))), 201


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
        issuer=base_url(),
        authorization_endpoint=authorize_url(),
        token_endpoint=token_url(),
        grant_types_supported=["authorization_code", "client_credentials"],
        response_types_supported=["code"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post",
                                               "private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported=list(client_assertions.ALGORITHMS),
        scopes_supported=[*clients.SUPPORTED_SCOPES,
                          *(scopes.v2(scope) for scope in clients.SUPPORTED_SCOPES),
                          *smart.CONTEXT_SCOPES, "user/*.rs", "user/*.cruds",
                          "patient/*.rs", "patient/*.cruds"],
        capabilities=["launch-ehr", "launch-standalone", "context-ehr-patient",
                      "context-standalone-patient", "client-public",
                      "client-confidential-symmetric", "client-confidential-asymmetric",
                      "permission-v1", "permission-v2", "permission-user",
                      "permission-patient"],
    )
