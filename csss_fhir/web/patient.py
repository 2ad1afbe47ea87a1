"""The patient's pages: upload a scan, follow own scans in plain words, read a released
report (the doctor's finding first, the AI's proposal second), download its PDF, and ask the
help assistant. A preliminary AI result is never shown; what a report says is gathered by
patient_reports.py, what the assistant answers is decided by assistant/."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from csss_fhir import assistant, patient_reports, workflow
from csss_fhir.errors import (
    ConflictError,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableContentError,
    UnsupportedMediaError,
)
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.reports import times
from csss_fhir.web import dashboards, errors, worklists

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_patient", __name__, url_prefix="/patient")
bp.register_error_handler(RequestEntityTooLarge, errors.too_large)

ACCEPT = ".jpg,.jpeg,.png,.dcm,image/jpeg,image/png,application/dicom"


def contacts() -> assistant.Contacts:
    settings = services().settings
    return assistant.Contacts(emergency_number=settings.emergency_number,
                              hospital_phone=settings.hospital_phone,
                              hospital_name=settings.hospital_name)


def _page(actor: Actor, *, status: int = 200, error: str | None = None,
          question: str = "") -> tuple[str, int]:
    settings = services().settings
    scans = worklists.own_scans(db.session, actor)
    reply = None
    if question.strip():
        zone = settings.hospital_timezone
        reply = assistant.answer(
            question, [assistant.ScanStatus(uploaded=times.local(row.scan.created_at, zone),
                                            state=row.state) for row in scans],
            patient_reports.active_medicines(db.session, actor), contacts())
    return render_template("web/patient.html", scans=scans, error=error, question=question,
                           reply=reply, max_upload_mb=settings.max_upload_mb,
                           description=request.form.get("description", ""),
                           accept=ACCEPT), status


@bp.get("")
def dashboard() -> tuple[str, int]:
    actor = dashboards.signed_in_as("patient")
    return _page(actor, question=request.args.get("q", ""))


# What refuses an upload is the file (the note's length is bounded by the form), so the
# refusal sits beside it; a DICOM file's identifiers are the hospital's words, not a
# patient's.
UPLOAD_MESSAGES: dict[errors.RefusalKey, str | errors.Beside] = {
    ConflictError: errors.Beside(
        "file", "This file cannot be added to your scans: it is a study the hospital has "
                "already, or it belongs to another patient. Check that it is your own scan; "
                "call the hospital if you are unsure."),
    # The API says the type is "judged from its content, not its name"; a patient is told
    # what to send instead.
    UnsupportedMediaError: errors.Beside(
        "file", "We could not open this file as an X-ray image. Send your chest X-ray as a "
                "JPEG or PNG picture, or as the DICOM file the hospital or clinic gave you. "
                "Renaming a file (for example to “.png”) does not change what is inside it."),
    **{kind: errors.Beside("file") for kind in (
        InvalidInputError, PayloadTooLargeError, UnprocessableContentError)},
}


@bp.post("/scans")
@errors.refusals_in_form(_page, messages=UPLOAD_MESSAGES)
def upload() -> Response:
    actor = dashboards.signed_in_as("patient")
    workflow.upload_scan(db.session, services(), actor, workflow.UploadRequest(
        data=_read_file(), patient_id=None,
        description=request.form.get("description", "").strip() or None))
    flash("Your scan was uploaded. We will e-mail you when the report is ready.", "success")
    return redirect(url_for("web_patient.dashboard"))


@bp.get("/reports/<report_id>")
def report(report_id: str) -> str:
    actor = dashboards.signed_in_as("patient")
    return render_template("web/patient_report.html",
                           report=patient_reports.released_report(db.session, actor, report_id))


@bp.get("/reports/<report_id>/pdf")
def report_pdf(report_id: str) -> Response:
    """The report's current PDF as a download named `report-YYYY-MM-DD.pdf`."""
    actor = dashboards.signed_in_as("patient")
    found = patient_reports.released_report(db.session, actor, report_id)
    settings = services().settings
    response = Response(services().store.get(found.pdf_sha256), content_type="application/pdf")
    name = times.report_filename(found.released, settings.hospital_timezone)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _read_file() -> bytes:
    settings = services().settings
    file = request.files.get("file")
    if file is None or not file.filename:
        raise InvalidInputError("choose a file to upload (JPEG, PNG or DICOM)")
    data = file.stream.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"the file is larger than the {settings.max_upload_mb} MB limit")
    if not data:
        raise InvalidInputError("the file is empty")
    return data
