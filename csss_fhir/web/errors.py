"""The UI's one error handler: refusals outside /fhir and /auth become pages.

Not signed in (or the session ended) -> the sign-in page; another role's page -> 403 page;
unknown id -> 404 page; every other refusal -> an error page with the refusal's message and
the status /fhir would give it (api/outcomes.py is the one status table).
"""

from __future__ import annotations

from flask import Flask, Response, g, redirect, render_template, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from csss_fhir.api.outcomes import status_of
from csss_fhir.errors import CsssError, ResourceNotFoundError
from csss_fhir.security.errors import AccessDeniedError, NotAuthenticatedError
from csss_fhir.web import session
from csss_fhir.workflow.errors import StepNotAllowedError


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


def sentence(error: CsssError) -> str:
    """A refusal's message as a sentence for a page."""
    message = str(error)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
