"""The doctor's dashboard: the worklist, a scan page (image with zoom and Grad-CAM overlay,
the AI's probabilities against the threshold), run the AI, verify, return the scan to the
patient, mark it urgent, and propose a correction of a released report (it waits for an
administrator's approval: workflow/amendments.py). In blind-read mode the AI's proposal
stays hidden until the doctor has written a provisional finding.

Also the scan image and Grad-CAM routes, which staff pages share: they read through
security/access.py like /fhir/Binary and /fhir/Observation do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from csss_fhir import registration, wording, workflow
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.reports import scan_images
from csss_fhir.security import access
from csss_fhir.web import dashboards, errors, session, worklists
from csss_fhir.workflow import amendments, ingest
from csss_fhir.workflow.errors import (
    AgreementRequiredError,
    AmendmentPendingError,
    FindingRequiredError,
)
from csss_fhir.workflow.states import ScanState

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_doctor", __name__)

FILTERS = {
    "all": [ScanState.PENDING_AI, ScanState.AI_ANALYZED],
    "ai": [ScanState.PENDING_AI],
    "verify": [ScanState.AI_ANALYZED],
    "released": [ScanState.REPORT_READY],
}


@bp.get("/doctor")
def worklist() -> str:
    actor = dashboards.signed_in_as("doctor")
    waiting = request.args.get("waiting", "all")
    if waiting not in FILTERS:
        waiting = "all"
    text = request.args.get("q", "")[:100]
    uncertain = request.args.get("uncertain") == "1"
    # Released reports are looked up to be corrected, newest first; the others wait in turn.
    rows = worklists.staff_queue(db.session, actor, FILTERS[waiting], text=text,
                                 uncertain_only=uncertain, newest_first=waiting == "released")
    return render_template("web/doctor_worklist.html", rows=rows, waiting=waiting, q=text,
                           uncertain=uncertain, now=worklists.now())


def _scan_page(actor: Actor, study_id: str, *, status: int = 200,
               error: str | None = None) -> tuple[str, int]:
    scan = worklists.scan(db.session, actor, study_id)
    prediction = scan.prediction
    classes = []
    if prediction is not None:
        classes = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
    blind_read = services().settings.blind_read
    provisional = request.form.get("provisionalFinding", "").strip()
    # Blind read: while the scan waits for verification, the AI's proposal is hidden until
    # the doctor has written a provisional finding (kept in the form, stored at $verify).
    hide_ai = blind_read and scan.task.state == ScanState.AI_ANALYZED and not provisional
    report = scan.report
    return render_template(
        "web/doctor_scan.html", scan=scan, state=scan.task.state, prediction=prediction,
        classes=classes, error=error, form=request.form, hide_ai=hide_ai,
        blind_read=blind_read, provisional=provisional,
        superseded=worklists.superseded_reviews(db.session, actor, study_id),
        returns=worklists.returns(db.session, actor, study_id),
        other_scans=worklists.patient_scans(db.session, actor, scan),
        report=report,
        pending=amendments.pending_for(db.session, report.id) if report else None,
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


AGREE_CHOICES = {"yes": True, "no": False}


@bp.post("/doctor/scans/<study_id>/verify")
@errors.refusals_in_form(_scan_page, messages={
    AgreementRequiredError: "Choose whether you agree with the AI's proposal: nothing is "
                            "selected for you.",
    (InvalidInputError, "agree"): "You chose “Yes, I agree” but named a different finding: "
                                  "choose “No — my finding differs”, or clear the finding.",
    (FindingRequiredError, None): errors.Beside(
        "finding", "The AI could not assess this image, so there is nothing to agree with: "
                   "name what the scan shows, or return the scan to the patient for a new "
                   "image.")})
def verify(study_id: str) -> Response:
    actor = dashboards.signed_in_as("doctor")
    workflow.verify(db.session, actor, study_id,
                    note=request.form.get("note", ""),
                    agree=AGREE_CHOICES.get(request.form.get("agree", "")),
                    finding=_finding_code(actor, study_id, request.form.get("finding", "")),
                    provisional_finding=request.form.get("provisionalFinding"),
                    blind_read=services().settings.blind_read)
    flash("Scan verified; it is now in the pharmacist's queue.", "success")
    return redirect(url_for("web_doctor.worklist"))


def _finding_code(actor: Actor, study_id: str, typed: str) -> str | None:
    """The finding as the record keeps it: the form offers the AI's classes in words
    ("Bacterial pneumonia"), the record and the report's code keep the class name."""
    prediction = worklists.scan(db.session, actor, study_id).prediction
    classes = prediction.probabilities if prediction is not None else ()
    return wording.code_for(typed.strip(), classes) or None


@bp.post("/doctor/scans/<study_id>/blind-read")
def blind_read(study_id: str) -> tuple[str, int]:
    """Show the AI's proposal once a provisional finding is written (nothing is stored yet:
    the provisional finding travels with the verify form and is stored with the verdict)."""
    actor = dashboards.signed_in_as("doctor")
    if not request.form.get("provisionalFinding", "").strip():
        g.error_field = "provisionalFinding"
        return _scan_page(actor, study_id, status=400,
                          error="Write your provisional finding before the AI's proposal "
                                "is shown.")
    return _scan_page(actor, study_id)


@bp.post("/doctor/scans/<study_id>/return")
@errors.refusals_in_form(_scan_page)
def return_to_patient(study_id: str) -> Response:
    actor = dashboards.signed_in_as("doctor")
    workflow.return_to_patient(db.session, services(), actor, study_id,
                               reason=request.form.get("reason"))
    flash("Scan returned: the patient is asked for a new image.", "success")
    return redirect(url_for("web_doctor.worklist"))


@bp.post("/doctor/scans/<study_id>/amend")
@errors.refusals_in_form(_scan_page, messages={
    (InvalidInputError, "note"): errors.Beside(
        "reason", "Give the reason for the correction: what is wrong in the released report "
                  "and what is right. The administrator reads it before approving."),
    AmendmentPendingError: "A correction of this report is already waiting for an "
                           "administrator's approval; it must be approved before you "
                           "propose another.",
    FindingRequiredError: errors.Beside(
        "finding", "“Uncertain” is not a finding: name what the scan shows, or leave the "
                   "finding empty to keep the current one.")})
def amend(study_id: str) -> Response:
    """Propose a correction of the released report ($amend): it waits for an administrator,
    and nothing reaches the patient until it is approved."""
    actor = dashboards.signed_in_as("doctor")
    report = worklists.released_report(db.session, actor, study_id)
    workflow.amend(db.session, actor, report.id,
                   note=request.form.get("reason", ""),
                   finding=_finding_code(actor, study_id, request.form.get("finding", "")),
                   if_match=_shown_version(request.form.get("version")))
    flash("Correction waiting for an administrator's approval: the patient's report "
          "changes only once it is approved.", "success")
    return redirect(url_for("web_doctor.scan_page", study_id=study_id))


def _shown_version(version: str | None) -> str | None:
    """The report version the page showed, as If-Match: a report corrected meanwhile is
    refused (412) rather than corrected twice without the doctor seeing the first."""
    return f'W/"{version}"' if version and version.isdigit() else None


@bp.post("/doctor/scans/<study_id>/priority")
@errors.refusals_in_form(_scan_page)
def prioritize(study_id: str) -> Response:
    actor = dashboards.signed_in_as("doctor")
    workflow.prioritize(db.session, actor, study_id, priority=request.form.get("priority"))
    return redirect(url_for("web_doctor.scan_page", study_id=study_id))


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
