"""The administrator's dashboard: the approval queue with the step-up second factor, the
released report and its e-mail delivery, pending report amendments and their approval, user
management (each change behind a fresh second factor; another admin's authenticator can only
be reset), the audit log and the system page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from sqlalchemy.engine import make_url

from csss_fhir import accounts, registration, workflow
from csss_fhir.errors import InvalidInputError
from csss_fhir.extensions import services
from csss_fhir.mail import deliveries
from csss_fhir.models import Role, User, db
from csss_fhir.security import audit, authentication
from csss_fhir.security.errors import NotAuthenticatedError, OtpInvalidError, OtpRequiredError
from csss_fhir.web import dashboards, errors, session, worklists
from csss_fhir.wording import readable
from csss_fhir.workflow import amendments
from csss_fhir.workflow.states import ScanState

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_admin", __name__, url_prefix="/admin")


@bp.get("")
def dashboard() -> str:
    actor = dashboards.signed_in_as("admin")
    text = request.args.get("q", "")[:100]
    waiting = worklists.staff_queue(db.session, actor, [ScanState.PHARMACIST_COMPLETED],
                                    text=text)
    released = worklists.staff_queue(db.session, actor, [ScanState.REPORT_READY],
                                     newest_first=True)[:20]
    return render_template("web/admin_dashboard.html", waiting=waiting, released=released,
                           amendments=amendments.pending_amendments(db.session, actor), q=text,
                           now=worklists.now(), window_left=_window_left(actor))


# --- approval ---------------------------------------------------------------------------

def _scan_page(actor: Actor, study_id: str, *, status: int = 200,
               error: str | None = None, notice: str | None = None) -> tuple[str, int]:
    scan = worklists.scan(db.session, actor, study_id)
    minutes = services().settings.otp_step_up_minutes
    return render_template(
        "web/admin_scan.html", scan=scan, state=scan.task.state, review=scan.review,
        prediction=scan.prediction,
        prescriptions=worklists.prescriptions(db.session, actor, study_id),
        pharmacy=worklists.pharmacy_review(db.session, actor, study_id),
        fresh=authentication.second_factor_is_fresh(actor, minutes=minutes),
        window_left=_window_left(actor), step_up_minutes=minutes,
        reason=request.form.get("reason", ""),
        superseded=worklists.superseded_reviews(db.session, actor, study_id),
        returns=worklists.returns(db.session, actor, study_id),
        error=error, notice=notice), status


@bp.get("/scans/<study_id>")
def scan_page(study_id: str) -> tuple[str, int]:
    actor = dashboards.signed_in_as("admin")
    return _scan_page(actor, study_id)


@bp.post("/scans/<study_id>/send-back")
@errors.refusals_in_form(_scan_page)
def send_back(study_id: str) -> Response:
    actor = dashboards.signed_in_as("admin")
    workflow.send_back(db.session, actor, study_id, reason=request.form.get("reason"))
    flash("Scan sent back to the doctor with your reason.", "success")
    return redirect(url_for("web_admin.dashboard"))


@bp.post("/scans/<study_id>/code")
@errors.refusals_in_form(_scan_page)
def send_code(study_id: str) -> tuple[str, int]:
    """E-mail a fresh one-time code for the step-up (the password proves it is still you)."""
    actor = dashboards.signed_in_as("admin")
    _email_code(actor)
    minutes = services().settings.otp_expire_minutes
    return _scan_page(actor, study_id, notice=f"We e-mailed you a 6-digit code; it works for "
                                              f"{minutes} minutes.")


@bp.post("/scans/<study_id>/approve")
@errors.refusals_in_form(_scan_page, messages={
    OtpRequiredError: errors.Beside(
        "otp", "Approval needs a second factor: enter a fresh code from your authenticator, "
               "or have one e-mailed to you below."),
    OtpInvalidError: errors.Beside("otp", "That code is wrong, already used or expired."),
    (InvalidInputError, None): errors.Beside("otp"),  # an empty code
})
def approve(study_id: str) -> Response:
    """Approve with the step-up window, or with a code that renews it first: the admin
    types one code and approves the next scans without another until the window lapses."""
    actor = dashboards.signed_in_as("admin")
    code = request.form.get("otp", "").strip() or None
    if code is not None:
        token = authentication.renew_second_factor(db.session, services(), actor, code)
        actor = session.renew_for_request(token)
    report = workflow.approve(db.session, services(), actor, study_id)
    left = _window_left(actor)
    flash("Report approved and released to the patient."
          + (f" Your second factor stays valid for {left}: approve the next scans without "
             "a new code." if left else ""), "success")
    return redirect(url_for("web_admin.report_page", report_id=report.id))


def _window_left(actor: Actor) -> str | None:
    """The time left in the step-up window in words ("7 more minutes"); None once lapsed."""
    left = authentication.second_factor_time_left(
        actor, minutes=services().settings.otp_step_up_minutes)
    if not left:
        return None
    minutes = int(left.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    return "1 more minute" if minutes == 1 else f"{minutes} more minutes"


def _report_page(actor: Actor, report_id: str, *, status: int = 200,
                 error: str | None = None) -> tuple[str, int]:
    report = worklists.report(db.session, actor, report_id)
    minutes = services().settings.otp_step_up_minutes
    return render_template("web/admin_report.html", report=report, scan=report.scan,
                           state=report.scan.task.state,
                           pending=amendments.pending_for(db.session, report_id),
                           fresh=authentication.second_factor_is_fresh(actor, minutes=minutes),
                           step_up_minutes=minutes, error=error,
                           mails=deliveries.report_deliveries(db.session, report_id,
                                                              actor=actor)), status


@bp.get("/reports/<report_id>")
def report_page(report_id: str) -> tuple[str, int]:
    actor = dashboards.signed_in_as("admin")
    return _report_page(actor, report_id)


@bp.post("/reports/<report_id>/amendment/approve")
@errors.refusals_in_form(_report_page, messages={
    OtpRequiredError: errors.Beside(
        "otp", "Releasing an amendment needs a second factor: enter a fresh code from your "
               "authenticator or an e-mailed one."),
    OtpInvalidError: errors.Beside("otp", "That code is wrong, already used or expired."),
})
def approve_amendment(report_id: str) -> Response:
    actor = dashboards.signed_in_as("admin")
    workflow.approve_amendment(db.session, services(), actor, report_id,
                               code=request.form.get("otp", "").strip() or None)
    flash("Amendment approved: the corrected report is released and e-mailed to the patient.",
          "success")
    return redirect(url_for("web_admin.report_page", report_id=report_id))


@bp.post("/reports/<report_id>/mail/<mail_id>/resend")
def resend_mail(report_id: str, mail_id: str) -> Response:
    """Send a report's e-mail again: a failed or waiting one now, a sent one as a new copy."""
    actor = dashboards.signed_in_as("admin")
    worklists.report(db.session, actor, report_id)
    deliveries.resend(db.session, mail_id, svc=services(), actor=actor)  # a job sends it
    flash("The e-mail is queued to be sent again; see its status below.", "success")
    return redirect(url_for("web_admin.report_page", report_id=report_id))


# --- users ---------------------------------------------------------------------------
# Every account-security action needs a second factor from the last OTP_STEP_UP_MINUTES
# (the rule of $approve, in security/authentication.py). The page asks for a code once and
# renews the window: the cookie's token is replaced by one whose second factor is now.

NEW_USER_FIELDS = ("email", "name", "role", "birth_date", "gender", "mrn")
SUDO_MESSAGES: dict[errors.RefusalKey, str | errors.Beside] = {
    OtpRequiredError: errors.Beside(
        "step-up-otp", "Account changes need a second factor from the last few minutes: "
                       "confirm with a code first."),
    OtpInvalidError: errors.Beside("step-up-otp", "That code is wrong, already used or "
                                                  "expired."),
}
# The new-account form's fields by the names the account rules give them.
NEW_USER_MESSAGES: dict[errors.RefusalKey, str | errors.Beside] = {
    **SUDO_MESSAGES,
    **{name: errors.Beside(f"new-{name}") for name in ("name", "email", "role", "password")},
    "birth_date": errors.Beside("new-birth"),
}


def _new_user_form() -> dict[str, str]:
    return {k: request.form.get(k, "").strip() for k in NEW_USER_FIELDS}


def _users_page(actor: Actor, *, status: int = 200, error: str | None = None,
                notice: str | None = None, form: dict | None = None) -> tuple[str, int]:
    text, role = request.args.get("q", "")[:100], request.args.get("role", "")
    from csss_fhir.security import totp

    minutes = services().settings.otp_step_up_minutes
    users = accounts.list_users(db.session, actor, text=text,
                                role=role if role in set(Role) else "")
    enrolled = {u.id for u in users if u.role == Role.ADMIN and totp.is_enrolled(db.session, u)}
    return render_template("web/admin_users.html", users=users, q=text, role=role,
                           roles=list(Role), staff_roles=list(accounts.STAFF_ROLES),
                           enrolled=enrolled, error=error, notice=notice,
                           form=form or {}, genders=registration.GENDERS,
                           fresh=authentication.second_factor_is_fresh(actor, minutes=minutes),
                           step_up_minutes=minutes), status


def _users_page_refused(actor: Actor, *, status: int, error: str,
                        user_id: str | None = None) -> tuple[str, int]:
    """The users page after a refused form: a new account's fields stay as typed; a form
    about one row (`user_id`) has none of them to keep."""
    return _users_page(actor, status=status, error=error,
                       form=None if user_id else _new_user_form())


@bp.get("/users")
def users() -> tuple[str, int]:
    actor = dashboards.signed_in_as("admin")
    return _users_page(actor)


@bp.post("/users/confirm")
@errors.refusals_in_form(_users_page, messages={
    **SUDO_MESSAGES, (InvalidInputError, None): errors.Beside("step-up-otp")})  # no code
def confirm_second_factor() -> Response:
    """Check a one-time code and renew the step-up window for account changes."""
    actor = dashboards.signed_in_as("admin")
    token = authentication.renew_second_factor(db.session, services(), actor,
                                               request.form.get("otp", "").strip() or None)
    flash("Confirmed: you can change accounts for the next "
          f"{services().settings.otp_step_up_minutes} minutes.", "success")
    return session.renew(redirect(url_for("web_admin.users")), token)


@bp.post("/users/code")
@errors.refusals_in_form(_users_page, messages={"password": errors.Beside("step-up-password")})
def send_users_code() -> tuple[str, int]:
    """E-mail a one-time code for the step-up (the password proves it is still you)."""
    actor = dashboards.signed_in_as("admin")
    _email_code(actor)
    minutes = services().settings.otp_expire_minutes
    return _users_page(actor, notice=f"We e-mailed you a 6-digit code; it works for "
                                     f"{minutes} minutes.")


@bp.post("/users")
@errors.refusals_in_form(_users_page_refused, messages=NEW_USER_MESSAGES)
def create_user() -> Response:
    actor = dashboards.signed_in_as("admin")
    form = _new_user_form()
    extra: dict[str, object] = {}
    if form["role"] == Role.PATIENT:
        extra = {"birth_date": _date(form["birth_date"]),
                 "gender": form["gender"] or None, "mrn": form["mrn"] or None}
    accounts.create(db.session, services(), actor, email=form["email"], role=form["role"],
                    name=form["name"], password=request.form.get("password", ""), **extra)
    flash("Account created.", "success")
    return redirect(url_for("web_admin.users"))


def _date(text: str):
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as err:
        raise InvalidInputError("the birth date must be a date (YYYY-MM-DD)",
                                field="birth_date") from err


@bp.post("/users/<user_id>/active")
@errors.refusals_in_form(_users_page_refused, messages=SUDO_MESSAGES)
def set_active(user_id: str) -> Response:
    actor = dashboards.signed_in_as("admin")
    active = request.form.get("active") == "1"
    accounts.set_active(db.session, services(), actor, user_id, active)
    flash("Account enabled." if active else "Account disabled; its sessions end now.",
          "success")
    return redirect(url_for("web_admin.users"))


@bp.post("/users/<user_id>/role")
@errors.refusals_in_form(_users_page_refused, messages=SUDO_MESSAGES)
def change_role(user_id: str) -> Response:
    actor = dashboards.signed_in_as("admin")
    accounts.change_role(db.session, services(), actor, user_id, request.form.get("role", ""))
    flash("Role changed; the user signs in again to use it.", "success")
    return redirect(url_for("web_admin.users"))


@bp.post("/users/<user_id>/totp/reset")
@errors.refusals_in_form(_users_page_refused, messages=SUDO_MESSAGES)
def reset_totp(user_id: str) -> Response:
    """Remove an administrator's authenticator; its owner enrols a new one on their account
    page (no secret is ever shown to anyone else)."""
    actor = dashboards.signed_in_as("admin")
    accounts.reset_authenticator(db.session, services(), actor, user_id)
    flash("Authenticator reset. Its owner signs in with an e-mailed code and enrols a new "
          "one on their account page.", "success")
    return redirect(url_for("web_admin.users"))


def _email_code(actor: Actor) -> None:
    user = db.session.get(User, actor.user_id)
    try:
        authentication.request_code(db.session, services(), username=user.email,
                                    password=request.form.get("password", ""))
    except NotAuthenticatedError as err:
        # The admin is signed in: a wrong password here is a form error, not "sign in".
        raise InvalidInputError("your password is wrong", field="password") from err


# --- audit and system -------------------------------------------------------------------

@bp.get("/audit")
def audit_log() -> str:
    actor = dashboards.signed_in_as("admin")
    filters = {k: request.args.get(k, "").strip()[:100] for k in
               ("agent", "patient", "type", "since")}
    since, error = None, None
    if filters["since"]:
        try:
            since = datetime.fromisoformat(filters["since"])
        except ValueError:
            error = "The date must look like 2025-01-31."
            g.error_field = "since"
        else:
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
    rows = audit.recent_records(db.session, actor, agent=filters["agent"],
                                patient=filters["patient"], type_code=filters["type"],
                                since=since)
    return render_template("web/admin_audit.html", rows=rows, filters=filters, error=error,
                           names=worklists.audit_names(db.session, rows))


@bp.get("/system")
def system() -> str:
    dashboards.signed_in_as("admin")
    svc = services()
    settings = svc.settings
    model: dict = {}
    model_error = None
    try:
        metadata = svc.classifier.get().metadata
        model = {"name": metadata.get("name", "classifier"),
                 "version": metadata.get("version", "unknown"),
                 "classes": ", ".join(map(readable, metadata.get("classes", []))),
                 "sha256": str(metadata.get("sha256", ""))[:16]}
    except Exception as err:
        model_error = type(err).__name__
    url = make_url(str(db.engine.url))
    return render_template(
        "web/admin_system.html", model=model, model_error=model_error,
        threshold=settings.confidence_threshold, database=url.render_as_string(
            hide_password=True), dialect=url.get_backend_name(),
        mail_backend=settings.mail_backend, backlog=worklists.outbox_backlog(db.session),
        max_upload_mb=settings.max_upload_mb, environment=settings.env)
