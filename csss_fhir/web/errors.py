"""The UI's one error handler, and the one decorator for forms: refusals become pages.

Not signed in (or the session ended) -> the sign-in page; another role's page -> 403 page;
unknown id -> 404 page; every other refusal -> an error page with the refusal's message and
the status /fhir would give it (api/outcomes.py is the one status table). A view decorated
with `refusals_in_form` shows those other refusals in its form instead, and beside the
field they are about when the refusal names one (`CsssError.field`, `error_field()`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from flask import Flask, Response, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from csss_fhir.api.outcomes import status_of
from csss_fhir.errors import CsssError, ResourceNotFoundError
from csss_fhir.models import db
from csss_fhir.security.errors import AccessDeniedError, NotAuthenticatedError
from csss_fhir.web import session
from csss_fhir.workflow.errors import StepNotAllowedError

# Refusals a form cannot show: there is no page to return to (signed out, another role's
# page, an unknown id), so they reach render_refusal.
PASS_THROUGH = (NotAuthenticatedError, AccessDeniedError, StepNotAllowedError,
                ResourceNotFoundError)

View = Callable[..., ResponseReturnValue]


def render_refusal(error: CsssError) -> Response | tuple[str, int]:
    if isinstance(error, NotAuthenticatedError):
        if session.has_cookie():
            return session.end(redirect(url_for("web_auth.login_form", expired=1)))
        return redirect(url_for("web_auth.login_form"))
    if isinstance(error, AccessDeniedError | StepNotAllowedError):
        return render_template("web/error.html", title="Not allowed", status=403,
                               message=str(error), actor=g.get("actor")), 403
    if isinstance(error, ResourceNotFoundError):
        return render_template("web/error.html", title="Not found", status=404,
                               message=str(error), actor=g.get("actor")), 404
    status = int(status_of(error))
    return render_template("web/error.html", title="That did not work", status=status,
                           message=str(error), actor=g.get("actor")), status


def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    from csss_fhir.extensions import services

    message = (f"the file is larger than the {services().settings.max_upload_mb} MB limit; "
               "send a smaller file")
    return render_template("web/error.html", title="File too large", status=413,
                           message=message, actor=g.get("actor")), 413


def init_app(app: Flask) -> None:
    app.extensions["web_error_handler"] = render_refusal
    app.jinja_env.globals["error_field"] = error_field


def error_field() -> str | None:
    """The form field the refusal on this page is about (templates mark it invalid)."""
    return g.get("error_field")


def sentence(error: CsssError) -> str:
    """A refusal's message as a sentence for a page."""
    message = str(error)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def refusals_in_form(page: Callable[..., tuple[str, int]], *,
                     messages: Mapping[type[CsssError], str] | None = None
                     ) -> Callable[[View], View]:
    """Decorate a form's POST view: a refusal renders the form's page again with its message.

    `page(actor, status=..., error=..., **view_args)` renders the page; the status is the one
    /fhir would give the refusal. `messages` words chosen refusals for this form, and wins
    over PASS_THROUGH (an OTP refusal is a NotAuthenticatedError, yet the approval form
    shows it). The session is rolled back first: the page shows what is stored, not a
    refused change.
    """
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def view_with_form_refusals(**view_args: str) -> ResponseReturnValue:
            try:
                return view(**view_args)
            except CsssError as error:
                message = next((text for kind, text in (messages or {}).items()
                                if isinstance(error, kind)), None)
                if message is None and isinstance(error, PASS_THROUGH):
                    raise
                db.session.rollback()
                g.error_field = error.field
                return page(session.signed_in(), status=int(status_of(error)),
                            error=message or sentence(error), **view_args)
        return view_with_form_refusals
    return decorate
