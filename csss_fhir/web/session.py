"""The browser session: the JWT in an HttpOnly, SameSite cookie, and one CSRF scheme.

Every UI form carries a `csrf_token` field. Signed in, its value is the `csrf` claim of the
JWT in the cookie (flask-jwt-extended checks the same value again whenever `current_actor`
reads a cookie token on a POST, /fhir included, so a cookie alone never changes anything).
Signed out (the sign-in form), it is a random value kept in Flask's signed session cookie,
so that another site cannot sign a browser into an account of its choosing; that value is
accepted by the sign-in form only, never by a page that acts for a signed-in user.

The UI reads its session cookie only: an `Authorization: Bearer` header never signs a page
in (a stolen API token, or one whose second factor went stale, does not open the UI).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from datetime import UTC, datetime

from flask import Flask, Response, after_this_request, current_app, g, request
from flask import session as flask_session
from flask_jwt_extended import decode_token, set_access_cookies, unset_jwt_cookies
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from csss_fhir.errors import CsssError
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import current_actor
from csss_fhir.security.errors import NotAuthenticatedError

CSRF_FIELD = "csrf_token"
COOKIE_ONLY = ["cookies"]
_LOGIN_TOKEN_KEY = "login_csrf"
WEB_BLUEPRINTS = frozenset({"web_auth", "web_patient", "web_doctor", "web_pharmacist",
                            "web_admin"})
PUBLIC_ENDPOINTS = frozenset({"web_auth.login", "web_auth.login_form", "web_auth.home"})


class CsrfRefusedError(CsssError):
    """A form came without this browser session's CSRF token (stale page or another site)."""


class SessionEndedError(NotAuthenticatedError):
    """The browser's sign-in cookie expired or is no longer valid."""


def start(response: Response, access_token: str) -> Response:
    """Put a freshly issued token into the HttpOnly cookie."""
    set_access_cookies(response, access_token)
    flask_session.pop(_LOGIN_TOKEN_KEY, None)
    return response


def end(response: Response) -> Response:
    unset_jwt_cookies(response)
    return response


def has_cookie() -> bool:
    return current_app.config["JWT_ACCESS_COOKIE_NAME"] in request.cookies


def _cookie_claims() -> dict | None:
    """The claims of a valid cookie token; None without a cookie.

    Raises:
        SessionEndedError: a cookie is present but expired or invalid.
    """
    encoded = request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"])
    if not encoded:
        return None
    try:
        return decode_token(encoded)
    except (JWTExtendedException, PyJWTError) as err:
        raise SessionEndedError("your session has ended; please sign in again") from err


def csrf_token() -> str:
    """The value every form of this page must send back as `csrf_token`."""
    try:
        claims = _cookie_claims()
    except SessionEndedError:
        claims = None
    if claims and claims.get("csrf"):
        return claims["csrf"]
    token = flask_session.get(_LOGIN_TOKEN_KEY)
    if not token:
        token = flask_session[_LOGIN_TOKEN_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a POST to a UI page whose form lacks this session's token.

    Raises:
        SessionEndedError: the sign-in cookie expired (outside the sign-in page);
        CsrfRefusedError: missing or wrong token.
    """
    try:
        claims = _cookie_claims()
    except SessionEndedError:
        if request.endpoint not in PUBLIC_ENDPOINTS:
            raise
        claims = None
    expected = (claims or {}).get("csrf")
    if not expected and request.endpoint in PUBLIC_ENDPOINTS:
        expected = flask_session.get(_LOGIN_TOKEN_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfRefusedError("this form has expired or did not come from this site; "
                               "reload the page and try again")


def signed_in() -> Actor:
    """The signed-in Actor (cached for the request), as /fhir sees it.

    Raises:
        NotAuthenticatedError: not signed in, or the session ended.
    """
    if "actor" not in g:
        _cookie_claims()  # an expired cookie reads as "session ended", not "not signed in"
        g.actor = current_actor(locations=COOKIE_ONLY)
    return g.actor


def renew(response: Response, access_token: str) -> Response:
    """Replace the cookie's token (a renewed second factor, a changed password), and the
    cached Actor with it."""
    g.pop("actor", None)
    return start(response, access_token)


def renew_for_request(access_token: str) -> Actor:
    """Use a renewed token (a second factor just checked) for the rest of this request and
    put it in the cookie of whatever response the request ends with: a form refused after
    the code was accepted keeps the renewed window too. Returns the renewed Actor."""
    otp_at = decode_token(access_token).get("otp_at")
    g.actor = replace(signed_in(), otp_verified_at=datetime.fromtimestamp(otp_at, UTC)
                      if otp_at else None)
    after_this_request(lambda response: start(response, access_token))
    return g.actor


def init_app(app: Flask) -> None:
    @app.before_request
    def protect_forms() -> None:
        if request.method == "POST" and request.blueprint in WEB_BLUEPRINTS:
            check_csrf()

    # A global, not a context value: imported macros (which get no context) use it too.
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.context_processor
    def page_context() -> dict:
        from csss_fhir.extensions import services

        settings = services().settings
        return {"actor": g.get("actor"), "hospital_name": settings.hospital_name,
                "emergency_number": settings.emergency_number,
                "hospital_phone": settings.hospital_phone}
