"""The doctor's dashboard: the worklist, a scan page (image with zoom and Grad-CAM overlay,
the AI's probabilities against the threshold), run the AI, verify.

Also the scan image and Grad-CAM routes, which staff pages share: they read through
security/access.py like /fhir/Binary and /fhir/Observation do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from csss_fhir import registration, workflow
from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.reports import scan_images
from csss_fhir.security import access
from csss_fhir.web import dashboards, errors, session, worklists
from csss_fhir.workflow import ingest
from csss_fhir.workflow.states import ScanState

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_doctor", __name__)

FILTERS = {
    "all": [ScanState.PENDING_AI, ScanState.AI_ANALYZED],
    "ai": [ScanState.PENDING_AI],
    "verify": [ScanState.AI_ANALYZED],
}


@bp.get("/doctor")
def worklist() -> str:
    actor = dashboards.signed_in_as("doctor")
    waiting = request.args.get("waiting", "all")
    if waiting not in FILTERS:
        waiting = "all"
    text = request.args.get("q", "")[:100]
    uncertain = request.args.get("uncertain") == "1"
    rows = worklists.staff_queue(db.session, actor, FILTERS[waiting], text=text,
                                 uncertain_only=uncertain)
    return render_template("web/doctor_worklist.html", rows=rows, waiting=waiting, q=text,
                           uncertain=uncertain)


def _scan_page(actor: Actor, study_id: str, *, status: int = 200,
               error: str | None = None) -> tuple[str, int]:
    scan = worklists.scan(db.session, actor, study_id)
    prediction = scan.prediction
    classes = []
    if prediction is not None:
        classes = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
    return render_template(
        "web/doctor_scan.html", scan=scan, state=scan.task.state, prediction=prediction,
        classes=classes, error=error, form=request.form,
        threshold=services().settings.confidence_threshold), status


@bp.get("/doctor/scans/<study_id>")
def scan_page(study_id: str) -> tuple[str, int]:
    actor = dashboards.signed_in_as("doctor")
    return _scan_page(actor, study_id)


@bp.post("/doctor/scans/<study_id>/classify")
@errors.refusals_in_form(_scan_page)
def classify(study_id: str) -> Response:
    actor = dashboards.signed_in_as("doctor")
    workflow.classify(db.session, services(), actor, study_id)
    return redirect(url_for("web_doctor.scan_page", study_id=study_id))


@bp.post("/doctor/scans/<study_id>/verify")
@errors.refusals_in_form(_scan_page)
def verify(study_id: str) -> Response:
    actor = dashboards.signed_in_as("doctor")
    workflow.verify(db.session, actor, study_id,
                    note=request.form.get("note", ""),
                    agree=request.form.get("agree", "yes") == "yes",
                    finding=request.form.get("finding", "").strip() or None)
    flash("Scan verified; it is now in the pharmacist's queue.", "success")
    return redirect(url_for("web_doctor.worklist"))


@bp.get("/scans/<study_id>/image")
def image(study_id: str) -> Response:
    """The scan's image for staff pages (the same read rule as /fhir/Binary)."""
    actor = session.signed_in()
    scan = worklists.scan(db.session, actor, study_id)
    access.require_read(actor, "Binary")
    if not registration.may_read_binary(db.session, actor, scan.image):
        raise ResourceNotFoundError(f"ImagingStudy/{study_id} has no image you may see")
    data, content_type = scan_images.for_browser(
        services().store.get(scan.image.sha256), scan.image.content_type,
        max_pixels=services().settings.max_image_pixels)
    return _image_response(data, content_type)


@bp.get("/scans/<study_id>/gradcam")
def gradcam(study_id: str) -> Response:
    """The Grad-CAM overlay of the AI's top class (the AI result's read rule: staff only)."""
    actor = session.signed_in()
    access.require_read(actor, "Observation")
    scan = worklists.scan(db.session, actor, study_id)
    if scan.prediction is None:
        raise ResourceNotFoundError("the AI has not analysed this scan yet")
    if not scan.prediction.assessable:
        raise ResourceNotFoundError("no Grad-CAM overlay: the AI could not assess this image")
    from ml.gradcam import overlay_png

    classifier = services().classifier.get()
    data = ingest.classifier_input(services().store.get(scan.image.sha256),
                                   scan.source_format, services().settings)
    try:
        heatmap = classifier.gradcam(data, class_name=scan.prediction.top_class)
    except ValueError as err:  # the model in use no longer knows the predicted class
        raise ResourceNotFoundError("no Grad-CAM overlay: the model has changed since this "
                                    "scan was analysed") from err
    return _image_response(overlay_png(data, heatmap), "image/png")


def _image_response(data: bytes, content_type: str) -> Response:
    response = Response(data, content_type=content_type)
    response.headers["Cache-Control"] = "private, no-store"
    return response
