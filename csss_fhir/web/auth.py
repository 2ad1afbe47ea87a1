"""Sign in (with the second factor for administrators), sign out, change password, and an
administrator's own authenticator."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from csss_fhir import accounts
from csss_fhir.api.outcomes import status_of
from csss_fhir.errors import CsssError, InvalidInputError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security import authentication
from csss_fhir.security.errors import (
    AccessDeniedError,
    NotAuthenticatedError,
    OtpInvalidError,
    OtpRequiredError,
)
from csss_fhir.web import dashboards, errors, session

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_auth", __name__)


@bp.get("/")
def home() -> Response:
    try:
        actor = session.signed_in()
    except NotAuthenticatedError:
        return redirect(url_for("web_auth.login_form"))
    return redirect(url_for(dashboards.home_endpoint(actor.role)))


@bp.get("/login")
def login_form() -> str:
    notice = None
    if request.args.get("expired"):
        notice = "Your session has ended. Please sign in again."
    elif request.args.get("signed_out"):
        notice = "You have signed out."
    return render_template("web/login.html", step="password", notice=notice, email="",
                           next=_next_page())


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    code = request.form.get("otp", "").strip() or None
    svc = services()

    def again(step: str, status: int, *, error: CsssError | None = None,
              notice: str | None = None) -> tuple[str, int]:
        field, message = errors.shown(error, LOGIN_MESSAGES) if error else (None, None)
        g.error_field = field
        return render_template("web/login.html", step=step, email=email,
                               error=message or (errors.sentence(error) if error else None),
                               notice=notice, next=_next_page()), status

    if request.form.get("action") == "send-code":
        try:
            authentication.request_code(db.session, svc, username=email, password=password)
        except CsssError as err:
            return again("otp", int(status_of(err)), error=err)
        return again("otp", 200, notice=_code_sent(svc.settings.otp_expire_minutes))
    try:
        grant = authentication.login(db.session, svc, username=email, password=password,
                                     code=code)
    except OtpRequiredError:
        # The password was right: e-mail a code (an enrolled authenticator works as well).
        authentication.request_code(db.session, svc, username=email, password=password)
        return again("otp", 200, notice=_code_sent(svc.settings.otp_expire_minutes))
    except OtpInvalidError as err:
        return again("otp", 401, error=err)
    except CsssError as err:
        return again("otp" if code else "password", int(status_of(err)),
                     error=err)
    return session.start(redirect(_next_page() or url_for(dashboards.home_endpoint(grant.role))),
                         grant.access_token)


def _next_page() -> str | None:
    """Where to go after signing in: only back to a SMART app's approval page (a local
    path), never to another site."""
    target = request.values.get("next", "")
    return target if target.startswith("/auth/authorize?") else None


def _code_sent(minutes: int) -> str:
    return (f"We e-mailed you a 6-digit code; it works for {minutes} minutes. Enter it below "
            "with your password, or use the code from your authenticator app.")


# The sign-in form's refusals: a wrong code sits beside the code; a wrong e-mail address or
# password beside the password (which is typed again), without saying which was wrong.
LOGIN_MESSAGES: dict[errors.RefusalKey, str | errors.Beside] = {
    OtpInvalidError: errors.Beside("otp", "That code is wrong, already used or expired. Try "
                                          "again or send a new code."),
    (NotAuthenticatedError, None): errors.Beside("password", "The e-mail address or "
                                                             "password is wrong."),
}


@bp.post("/logout")
def logout() -> Response:
    try:
        authentication.logout(db.session, session.COOKIE_ONLY)  # onto the deny-list
    except CsssError:
        db.session.rollback()  # already invalid: signing out succeeds anyway
    return session.end(redirect(url_for("web_auth.login_form", signed_out=1)))


@bp.get("/account/password")
def password_form() -> str:
    session.signed_in()
    return render_template("web/password.html")


def _password_page(actor: Actor, *, status: int, error: str) -> tuple[str, int]:
    return render_template("web/password.html", error=error), status


@bp.post("/account/password")
@errors.refusals_in_form(_password_page, messages={
    # The policy's refusals, and "must differ from the current one", are about the new one.
    "password": errors.Beside("new_password"),
    (InvalidInputError, None): errors.Beside("new_password")})
def change_password() -> Response | tuple[str, int]:
    actor = session.signed_in()
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        g.error_field = "confirm_password"
        return render_template("web/password.html",
                               error="The two new passwords do not match: type the new "
                                     "password again."), 400
    try:
        token = accounts.change_password(db.session, services(), actor,
                                         current=request.form.get("current_password", ""),
                                         new=new)
    except NotAuthenticatedError as err:
        # The user is signed in: a wrong current password is a form error, not "sign in".
        raise InvalidInputError("your current password is wrong",
                                field="current_password") from err
    flash("Your password has been changed; your other sessions have ended.", "success")
    return session.renew(redirect(url_for(dashboards.home_endpoint(actor.role))), token)


# --- own authenticator (the only place a TOTP secret is ever shown) --------------------

def _authenticator_page(actor: Actor, *, status: int = 200, error: str | None = None,
                        notice: str | None = None, enrolment: dict | None = None
                        ) -> tuple[str, int]:
    from csss_fhir.models import User
    from csss_fhir.security import access, totp

    if not access.needs_second_factor(actor.role):
        raise AccessDeniedError("authenticators are for administrators, who sign in with a "
                                "second factor")
    minutes = services().settings.otp_step_up_minutes
    user = db.session.get(User, actor.user_id)
    return render_template(
        "web/authenticator.html", enrolled=totp.is_enrolled(db.session, user),
        fresh=authentication.second_factor_is_fresh(actor, minutes=minutes),
        step_up_minutes=minutes, error=error, notice=notice, enrolment=enrolment), status


@bp.get("/account/authenticator")
def authenticator() -> tuple[str, int]:
    return _authenticator_page(session.signed_in())


@bp.post("/account/authenticator")
@errors.refusals_in_form(_authenticator_page, messages={
    OtpRequiredError: errors.Beside(
        "otp", "Enrolling an authenticator needs a second factor from the last few minutes: "
               "enter a code (an e-mailed one works too)."),
    OtpInvalidError: errors.Beside("otp", "That code is wrong, already used or expired."),
})
def enrol_authenticator() -> tuple[str, int]:
    """Enrol a new authenticator for the signed-in administrator; its QR code is shown to
    them, this once."""
    actor = session.signed_in()
    uri = accounts.enrol_own_authenticator(db.session, services(), actor,
                                           code=request.form.get("otp", "").strip() or None)
    return _authenticator_page(actor, enrolment={"qr": _qr_data_uri(uri),
                                                 "secret": _secret_of(uri)})


@bp.post("/account/authenticator/code")
@errors.refusals_in_form(_authenticator_page)
def authenticator_code() -> tuple[str, int]:
    """E-mail a one-time code to confirm the enrolment (the password proves it is you)."""
    actor = session.signed_in()
    from csss_fhir.models import User

    user = db.session.get(User, actor.user_id)
    try:
        authentication.request_code(db.session, services(), username=user.email,
                                    password=request.form.get("password", ""))
    except NotAuthenticatedError as err:
        raise InvalidInputError("your password is wrong", field="password") from err
    minutes = services().settings.otp_expire_minutes
    return _authenticator_page(actor, notice=f"We e-mailed you a 6-digit code; it works for "
                                             f"{minutes} minutes.")


def _qr_data_uri(uri: str) -> str:
    import qrcode

    image = qrcode.make(uri, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _secret_of(uri: str) -> str:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(uri).query).get("secret", [""])[0]
