"""The workflow operations on ImagingStudy: $upload, $classify, $verify, $pharmacy-review,
$approve, and the ones that undo or triage: $return-to-patient, $send-back, $prioritize.
Each parses its inputs and calls one workflow command."""

from __future__ import annotations

from flask import Blueprint, Response, request

from adapters.fhir.parameters import OperationParameters, base64_length, upload_parameters
from csss_fhir import resources, workflow
from csss_fhir.api.responses import JSON_TYPES, check_acceptable, fhir_response, json_body
from csss_fhir.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import current_actor
from csss_fhir.workflow import staging

bp = Blueprint("fhir_operations", __name__, url_prefix="/fhir/ImagingStudy")

PARAMETERS_OVERHEAD = 64 * 1024  # the Parameters' JSON around the base64 file


@bp.before_request
def negotiate() -> None:
    check_acceptable(request)


def _parameters() -> OperationParameters:
    if not request.content_length and not request.get_data(cache=True):
        return OperationParameters({})
    return OperationParameters.from_body(json_body(request))


def _if_match() -> str | None:
    return request.headers.get("If-Match")


@bp.post("/$upload")
def upload() -> Response:
    actor = current_actor()
    if request.mimetype in JSON_TYPES:
        return _upload_parameters(actor)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaError(
            f"Content-Type {request.mimetype or '(none)'}: $upload takes multipart/form-data "
            "with a 'file' part (JPEG, PNG or DICOM), or a FHIR Parameters resource "
            "(application/fhir+json) with a 'file' Attachment")
    limit = services().settings.max_upload_bytes
    file = request.files.get("file")
    if file is None:
        raise InvalidInputError("the 'file' part is missing")
    data = file.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"the file is larger than {services().settings.max_upload_mb} MB")
    scan = workflow.upload_scan(db.session, services(), actor, workflow.UploadRequest(
        data=data, patient_id=_form("patient"), modality=_form("modality"),
        body_site=_form("bodySite"), description=_form("description")))
    return fhir_response(resources.render(scan), 201, location=True)


def _upload_parameters(actor: Actor) -> Response:
    """$upload with a Parameters body: the file inline as an Attachment, or `Binary/<id>`."""
    limit = services().settings.max_upload_bytes
    # base64 is 4/3 of the file: let the body be that large, the decoded file stays capped.
    request.max_content_length = base64_length(limit) + PARAMETERS_OVERHEAD
    params = upload_parameters(json_body(request), max_bytes=limit)
    data, staged_id = params.data, None
    if params.binary_id is not None:
        staged = staging.staged_file(db.session, actor, params.binary_id)
        data, staged_id = staged.data, staged.id
    scan = workflow.upload_scan(db.session, services(), actor, workflow.UploadRequest(
        data=data or b"", patient_id=params.patient_id, modality=params.modality,
        body_site=params.body_site, description=params.description,
        staged_binary_id=staged_id))
    return fhir_response(resources.render(scan), 201, location=True)


def _form(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    if name == "patient":
        value = value.removeprefix("Patient/")
    return value or None


@bp.post("/<study_id>/$classify")
def classify(study_id: str) -> Response:
    actor = current_actor()
    prediction = workflow.classify(db.session, services(), actor, study_id,
                                   if_match=_if_match())
    return fhir_response(resources.render(prediction), 201, location=True)


@bp.post("/<study_id>/$verify")
def verify(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    review = workflow.verify(
        db.session, actor, study_id,
        note=params.required_string("note"),
        agree=params.optional_boolean("agree"),
        finding=params.optional_string("finding"),
        provisional_finding=params.optional_string("provisionalFinding"),
        blind_read=services().settings.blind_read,
        if_match=_if_match(),
    )
    return fhir_response(resources.render(review), 201, location=True)


@bp.post("/<study_id>/$pharmacy-review")
def pharmacy_review(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    task = workflow.pharmacy_review(db.session, actor, study_id,
                                    note=params.required_string("note"),
                                    override_reason=params.optional_string("override-reason"),
                                    if_match=_if_match())
    return fhir_response(resources.render(task), 200)


@bp.post("/<study_id>/$approve")
def approve(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    report = workflow.approve(db.session, services(), actor, study_id,
                              code=params.optional_string("otp"), if_match=_if_match())
    return fhir_response(resources.render(report), 201, location=True)


@bp.post("/<study_id>/$return-to-patient")
def return_to_patient(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    task = workflow.return_to_patient(db.session, services(), actor, study_id,
                                      reason=params.optional_string("reason"),
                                      if_match=_if_match())
    return fhir_response(resources.render(task), 200)


@bp.post("/<study_id>/$send-back")
def send_back(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    task = workflow.send_back(db.session, actor, study_id,
                              reason=params.optional_string("reason"), if_match=_if_match())
    return fhir_response(resources.render(task), 200)


@bp.post("/<study_id>/$prioritize")
def prioritize(study_id: str) -> Response:
    actor = current_actor()
    params = _parameters()
    task = workflow.prioritize(db.session, actor, study_id,
                               priority=params.optional_string("priority"),
                               if_match=_if_match())
    return fhir_response(resources.render(task), 200)
