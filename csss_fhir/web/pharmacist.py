"""The pharmacist's dashboard: the queue of verified scans, the doctor's finding and notes,
structured prescriptions, completing the review, or sending the scan back to the doctor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from adapters.fhir.medication_request import PrescriptionData
from csss_fhir import workflow
from csss_fhir.errors import InvalidInputError
from csss_fhir.models import db
from csss_fhir.web import dashboards, errors, worklists
from csss_fhir.workflow.states import ScanState

if TYPE_CHECKING:
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_pharmacist", __name__, url_prefix="/pharmacist")

PRESCRIPTION_FIELDS = ("drug", "dose", "route", "frequency", "duration", "notes")


@bp.get("")
def queue() -> str:
    actor = dashboards.signed_in_as("pharmacist")
    text = request.args.get("q", "")[:100]
    rows = worklists.staff_queue(db.session, actor, [ScanState.DOCTOR_VERIFIED], text=text)
    return render_template("web/pharmacist_queue.html", rows=rows, q=text, now=worklists.now())


def _prescription_form() -> dict[str, str]:
    """The prescription fields as typed (empty on a GET), kept when a form is refused."""
    return {name: request.form.get(name, "").strip() for name in PRESCRIPTION_FIELDS}


def _scan_page(actor: Actor, study_id: str, *, status: int = 200,
               error: str | None = None) -> tuple[str, int]:
    scan = worklists.scan(db.session, actor, study_id)
    return render_template(
        "web/pharmacist_scan.html", scan=scan, state=scan.task.state, review=scan.review,
        prescriptions=worklists.prescriptions(db.session, actor, study_id), error=error,
        form=_prescription_form(), reason=request.form.get("reason", ""),
        superseded=worklists.superseded_reviews(db.session, actor, study_id),
        returns=worklists.returns(db.session, actor, study_id)), status


@bp.get("/scans/<study_id>")
def scan_page(study_id: str) -> tuple[str, int]:
    actor = dashboards.signed_in_as("pharmacist")
    return _scan_page(actor, study_id)


@bp.post("/scans/<study_id>/prescriptions")
@errors.refusals_in_form(_scan_page)
def prescribe(study_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    scan = worklists.scan(db.session, actor, study_id)
    values = _prescription_form()
    if not values["drug"]:
        raise InvalidInputError("the drug name is required")
    workflow.prescribe(db.session, actor, PrescriptionData(
        patient_id=scan.patient_id, scan_id=scan.id, medication=values["drug"],
        medication_code=None, dose=values["dose"] or None, route=values["route"] or None,
        frequency=values["frequency"] or None, duration=values["duration"] or None,
        dosage_text=None, note=values["notes"] or None))
    flash("Prescription added.", "success")
    return redirect(url_for("web_pharmacist.scan_page", study_id=study_id))


@bp.post("/scans/<study_id>/complete")
@errors.refusals_in_form(_scan_page)
def complete(study_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    workflow.pharmacy_review(db.session, actor, study_id,
                             note=request.form.get("review_note", ""))
    flash("Pharmacy review completed; the scan waits for approval.", "success")
    return redirect(url_for("web_pharmacist.queue"))


@bp.post("/scans/<study_id>/send-back")
@errors.refusals_in_form(_scan_page)
def send_back(study_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    workflow.send_back(db.session, actor, study_id, reason=request.form.get("reason"))
    flash("Scan sent back to the doctor with your reason.", "success")
    return redirect(url_for("web_pharmacist.queue"))
