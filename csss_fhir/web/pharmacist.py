"""The pharmacist's dashboard: the queue of verified scans, the doctor's finding and notes,
structured prescriptions (add, correct, cancel) with the formulary's warnings, completing the
review (with an override reason past a warning), or sending the scan back to the doctor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from adapters.fhir.medication_request import (
    DOSE_UNITS,
    FORM_FIELDS,
    FREQUENCIES,
    ROUTES,
    form_from_prescription,
    from_fhir_medication_request,
    medication_request_from_form,
    timing_text,
)
from csss_fhir import workflow
from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.models import db
from csss_fhir.web import dashboards, errors, worklists
from csss_fhir.workflow.errors import OverrideRequiredError, PrescriptionClosedError
from csss_fhir.workflow.states import ScanState

if TYPE_CHECKING:
    from csss_fhir.models import Prescription
    from csss_fhir.security.actor import Actor

bp = Blueprint("web_pharmacist", __name__, url_prefix="/pharmacist")


@bp.get("")
def queue() -> str:
    actor = dashboards.signed_in_as("pharmacist")
    text = request.args.get("q", "")[:100]
    rows = worklists.staff_queue(db.session, actor, [ScanState.DOCTOR_VERIFIED], text=text)
    return render_template("web/pharmacist_queue.html", rows=rows, q=text, now=worklists.now())


def _prescription_form() -> dict[str, str]:
    """The prescription fields as typed (empty on a GET), kept when a form is refused."""
    return {name: request.form.get(name, "").strip() for name in FORM_FIELDS}


def _frequency_words() -> dict[str, str]:
    from fhir.resources.R4B.timing import TimingRepeat

    return {key: timing_text(TimingRepeat(frequency=f, period=p, periodUnit=u))
            for key, (f, p, u) in FREQUENCIES.items()}


def _scan_page(actor: Actor, study_id: str, *, status: int = 200, error: str | None = None,
               prescription_id: str | None = None) -> tuple[str, int]:
    scan = worklists.scan(db.session, actor, study_id)
    prescriptions = worklists.prescriptions(db.session, actor, study_id)
    editing = next((p for p in prescriptions if p.id == prescription_id), None)
    if prescription_id and editing is None:
        raise ResourceNotFoundError(f"MedicationRequest/{prescription_id} is not a "
                                    "prescription of this scan")
    form = _prescription_form() if request.method == "POST" else (
        form_from_prescription(editing) if editing else {"unit": "mg"})
    return render_template(
        "web/pharmacist_scan.html", scan=scan, state=scan.task.state, review=scan.review,
        prescriptions=prescriptions, error=error, form=form, editing=editing,
        warned=any(p.warnings for p in prescriptions if p.status == "active"),
        routes=ROUTES, units=DOSE_UNITS, frequencies=_frequency_words(),
        reason=request.form.get("reason", ""), typed=request.form,
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
    body = medication_request_from_form(_prescription_form(), patient_id=scan.patient_id,
                                        scan_id=scan.id)
    row = workflow.prescribe(db.session, actor, from_fhir_medication_request(body))
    _flash_saved(row, "Prescription added.")
    return redirect(url_for("web_pharmacist.scan_page", study_id=study_id))


@bp.get("/scans/<study_id>/prescriptions/<prescription_id>")
def edit_page(study_id: str, prescription_id: str) -> tuple[str, int]:
    actor = dashboards.signed_in_as("pharmacist")
    return _scan_page(actor, study_id, prescription_id=prescription_id)


@bp.post("/scans/<study_id>/prescriptions/<prescription_id>")
@errors.refusals_in_form(_scan_page)
def correct(study_id: str, prescription_id: str) -> Response:
    """Save the edit form as the prescription's next version (the version the form was
    loaded from is its If-Match, so a concurrent change is not overwritten)."""
    actor = dashboards.signed_in_as("pharmacist")
    scan = worklists.scan(db.session, actor, study_id)
    body = medication_request_from_form(_prescription_form(), patient_id=scan.patient_id,
                                        scan_id=scan.id, resource_id=prescription_id)
    row = workflow.update_prescription(db.session, actor, prescription_id,
                                       from_fhir_medication_request(body),
                                       if_match=request.form.get("version") or None)
    _flash_saved(row, "Prescription corrected.")
    return redirect(url_for("web_pharmacist.scan_page", study_id=study_id))


@bp.post("/scans/<study_id>/prescriptions/<prescription_id>/cancel")
@errors.refusals_in_form(_scan_page, messages={
    PrescriptionClosedError: "This prescription is cancelled already; it stays in the record "
                             "as it is."})
def cancel(study_id: str, prescription_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    worklists.scan(db.session, actor, study_id)
    workflow.cancel_prescription(db.session, actor, prescription_id,
                                 status=request.form.get("status", "cancelled"),
                                 reason=request.form.get("reason"),
                                 if_match=request.form.get("version") or None)
    flash("Prescription cancelled; it stays in the record and is not printed.", "success")
    return redirect(url_for("web_pharmacist.scan_page", study_id=study_id))


def _flash_saved(row: Prescription, saved: str) -> None:
    if row.warnings:
        flash(f"{saved} Check the dose warning below: completing the review needs an "
              "override reason, or correct the dose.", "warning")
    else:
        flash(saved, "success")


# The review form's note is `review_note` (the send-back form has its own `reason`), while
# the workflow names the review's parameters as /fhir does.
REVIEW_MESSAGES = {
    "note": errors.Beside("review_note", "Write the pharmacy note: what you checked "
                                         "(interactions, allergies, counselling)."),
    OverrideRequiredError: errors.Beside(
        "override_reason", "A dose warning stands: give the override reason (why this dose "
                           "is right for this patient), or correct or cancel the "
                           "prescription first."),
}


@bp.post("/scans/<study_id>/complete")
@errors.refusals_in_form(_scan_page, messages=REVIEW_MESSAGES)
def complete(study_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    workflow.pharmacy_review(db.session, actor, study_id,
                             note=request.form.get("review_note", ""),
                             override_reason=request.form.get("override_reason") or None)
    flash("Pharmacy review completed; the scan waits for approval.", "success")
    return redirect(url_for("web_pharmacist.queue"))


@bp.post("/scans/<study_id>/send-back")
@errors.refusals_in_form(_scan_page)
def send_back(study_id: str) -> Response:
    actor = dashboards.signed_in_as("pharmacist")
    workflow.send_back(db.session, actor, study_id, reason=request.form.get("reason"))
    flash("Scan sent back to the doctor with your reason.", "success")
    return redirect(url_for("web_pharmacist.queue"))
