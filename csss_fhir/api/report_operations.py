"""`POST /fhir/DiagnosticReport/{id}/$amend`: correct a released report (a new version)."""

from __future__ import annotations

from flask import Blueprint, Response, request

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


@bp.post("/<report_id>/$amend")
def amend_report(report_id: str) -> Response:
    actor = current_actor()
    params = OperationParameters.from_body(json_body(request))
    report = workflow.amend(db.session, services(), actor, report_id,
                            note=params.required_string("note"),
                            finding=params.optional_string("finding"),
                            code=params.optional_string("otp"),
                            if_match=request.headers.get("If-Match"))
    return fhir_response(resources.render(report), 200)
