"""`POST /fhir/DiagnosticReport/{id}/$amend` (a doctor proposes a correction of a released
report) and `$approve-amendment` (an administrator releases it as the next version)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from adapters.fhir.outcome import operation_outcome
from adapters.fhir.parameters import OperationParameters
from csss_fhir import resources, workflow
from csss_fhir.api.responses import check_acceptable, fhir_response, json_body
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security.authentication import current_actor

bp = Blueprint("fhir_report_operations", __name__, url_prefix="/fhir/DiagnosticReport")


@bp.before_request
def negotiate() -> None:
    check_acceptable(request)


def _parameters() -> OperationParameters:
    if not request.content_length and not request.get_data(cache=True):
        return OperationParameters({})
    return OperationParameters.from_body(json_body(request))


@bp.post("/<report_id>/$amend")
def amend_report(report_id: str) -> Response:
    """202: the proposal waits for an administrator; the report is unchanged until then."""
    actor = current_actor()
    params = _parameters()
    amendment = workflow.amend(db.session, actor, report_id,
                               note=params.required_string("note"),
                               finding=params.optional_string("finding"),
                               if_match=request.headers.get("If-Match"))
    outcome = operation_outcome(
        "informational",
        f"amendment {amendment.id} of DiagnosticReport/{report_id} is pending: an "
        "administrator releases it with POST DiagnosticReport/"
        f"{report_id}/$approve-amendment", severity="information")
    return fhir_response(outcome, 202)


@bp.post("/<report_id>/$approve-amendment")
def approve_amendment(report_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    report = workflow.approve_amendment(db.session, services(), actor, report_id,
                                        code=params.optional_string("otp"),
                                        if_match=request.headers.get("If-Match"))
    return fhir_response(resources.render(report), 200)
