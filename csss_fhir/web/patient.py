"""The patient's dashboard: upload a scan, follow own scans in plain words, download the
released report, ask the help assistant. It never shows a preliminary AI result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from csss_fhir import workflow
from csss_fhir.errors import InvalidInputError, PayloadTooLargeError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.web import assistant, dashboards, errors, worklists

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_patient", __name__, url_prefix="/patient")
bp.register_error_handler(RequestEntityTooLarge, errors.too_large)

ACCEPT = ".jpg,.jpeg,.png,.dcm,image/jpeg,image/png,application/dicom"


def _page(actor: Actor, *, status: int = 200, error: str | None = None,
          question: str = "") -> tuple[str, int]:
    scans = worklists.own_scans(db.session, actor)
    reply = None
    if question.strip():
        reply = assistant.answer(question[:500], [
            assistant.ScanStatus(uploaded=row.scan.created_at, state=row.state)
            for row in scans])
    settings = services().settings
    return render_template("web/patient.html", scans=scans, error=error, question=question,
                           reply=reply, max_upload_mb=settings.max_upload_mb,
                           accept=ACCEPT), status


@bp.get("")
def dashboard() -> tuple[str, int]:
    actor = dashboards.signed_in_as("patient")
    return _page(actor, question=request.args.get("q", ""))


@bp.post("/scans")
@errors.refusals_in_form(_page)
def upload() -> Response:
    actor = dashboards.signed_in_as("patient")
    workflow.upload_scan(db.session, services(), actor, workflow.UploadRequest(
        data=_read_file(), patient_id=None,
        description=request.form.get("description", "").strip() or None))
    flash("Your scan was uploaded. We will e-mail you when the report is ready.", "success")
    return redirect(url_for("web_patient.dashboard"))


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
