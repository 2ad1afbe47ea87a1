"""The UI's one error handler, and the one decorator for forms: refusals become pages.

Not signed in (or the session ended) -> the sign-in page; another role's page -> 403 page;
unknown id -> 404 page; every other refusal -> an error page with the refusal's message and
the status /fhir would give it (api/outcomes.py is the one status table). A view decorated
with `refusals_in_form` shows those other refusals in its form instead: beside the field
they are about (`error_field()`; the field is marked invalid, described by the message and
focused), with a summary at the top of the page (base.html) that links to it. A refusal
about no field stays in that summary alone.

The words are the form's: a view words the refusals its form meets for the person using
it (`Beside`), and codes a refusal carries for API clients (a workflow state, a FHIR
reference) never reach the page.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, Response, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from csss_fhir.api.outcomes import status_of
from csss_fhir.errors import CsssError, PreconditionFailedError, ResourceNotFoundError
from csss_fhir.models import db
from csss_fhir.security.errors import AccessDeniedError, NotAuthenticatedError
from csss_fhir.web import session
from csss_fhir.wording import STATE_WORDS
from csss_fhir.workflow.errors import StepNotAllowedError, WrongStateError

# Refusals a form cannot show: there is no page to return to (signed out, another role's
# page, an unknown id), so they reach render_refusal.
PASS_THROUGH = (NotAuthenticatedError, AccessDeniedError, StepNotAllowedError,
                ResourceNotFoundError)

View = Callable[..., ResponseReturnValue]


@dataclass(frozen=True)
class Beside:
    """How a form shows one kind of refusal: beside its field `field` (the element's id;
    None keeps the field the refusal names), in `message` (None: the refusal's own)."""

    field: str | None = None
    message: str | None = None


# A kind of refusal: its class, the field it names (`CsssError.field`), or both; a field of
# None matches a refusal that names none.
RefusalKey = type[CsssError] | str | tuple[type[CsssError], str | None]


def render_refusal(error: CsssError) -> Response | tuple[str, int]:
    if isinstance(error, NotAuthenticatedError):
        if session.has_cookie():
            return session.end(redirect(url_for("web_auth.login_form", expired=1)))
        return redirect(url_for("web_auth.login_form"))
    if isinstance(error, AccessDeniedError | StepNotAllowedError):
        return render_template("web/error.html", title="Not allowed", status=403,
                               message=str(error), actor=g.get("actor")), 403
    if isinstance(error, ResourceNotFoundError):
        # The API's message names a FHIR reference ("ImagingStudy/<id> does not exist").
        return render_template("web/error.html", title="Not found", status=404,
                               message=NOT_FOUND, actor=g.get("actor")), 404
    status = int(status_of(error))
    return render_template("web/error.html", title="That did not work", status=status,
                           message=sentence(error), actor=g.get("actor")), status


NOT_FOUND = ("this page does not exist, or it is not one you may see: go back to your "
             "list and open it from there")


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
    """A refusal's message as a sentence for a page, in words instead of the codes the API
    message carries for its clients (a workflow state, a resource's version)."""
    if isinstance(error, WrongStateError) and error.details in STATE_WORDS:
        return ("This scan has moved on while the page was open: it is now "
                f"“{STATE_WORDS[error.details]}”. Nothing was changed; open it again from "
                "your list to see what is left to do.")
    if isinstance(error, PreconditionFailedError):
        return ("Someone changed this while you had the page open, so your change was not "
                "saved. Check the current version below and make your change again.")
    message = _PARAMETER.sub(lambda found: PARAMETER_WORDS[found[1]], str(error))
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


# /fhir parameters as an API message quotes them ("give your 'finding'"), and as a page says
# them ("give your finding").
PARAMETER_WORDS = {"reason": "a reason", "note": "note", "finding": "finding",
                   "provisionalFinding": "provisional finding", "agree": "agree",
                   "override-reason": "override reason", "priority": "priority"}
_PARAMETER = re.compile("'(" + "|".join(map(re.escape, PARAMETER_WORDS)) + ")'")


def _matches(key: RefusalKey, error: CsssError) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return all(isinstance(error, part) if isinstance(part, type) else error.field == part
               for part in parts)


def shown(error: CsssError, messages: Mapping[RefusalKey, str | Beside]
          ) -> tuple[str | None, str | None]:
    """The field a form shows `error` beside (None: the summary alone) and its words (None:
    no wording of this form matches): the first of `messages` whose key matches."""
    for key, how in messages.items():
        if _matches(key, error):
            if isinstance(how, str):
                return error.field, how
            return how.field or error.field, how.message
    return error.field, None


def refusals_in_form(page: Callable[..., tuple[str, int]], *,
                     messages: Mapping[RefusalKey, str | Beside] | None = None
                     ) -> Callable[[View], View]:
    """Decorate a form's POST view: a refusal renders the form's page again with its message,
    beside its field when it has one (the page keeps what was typed: it renders from
    `request.form`).

    `page(actor, status=..., error=..., **view_args)` renders the page; the status is the one
    /fhir would give the refusal. `messages` words chosen refusals for this form and puts
    them beside its fields (its keys: a refusal class, the field a refusal names, or both;
    the first match wins), and wins over PASS_THROUGH (an OTP refusal is a
    NotAuthenticatedError, yet the approval form shows it). The session is rolled back
    first: the page shows what is stored, not a refused change.
    """
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def view_with_form_refusals(**view_args: str) -> ResponseReturnValue:
            try:
                return view(**view_args)
            except CsssError as error:
                field, message = shown(error, messages or {})
                if message is None and isinstance(error, PASS_THROUGH):
                    raise
                db.session.rollback()
                g.error_field = field
                return page(session.signed_in(), status=int(status_of(error)),
                            error=message or sentence(error), **view_args)
        return view_with_form_refusals
    return decorate
