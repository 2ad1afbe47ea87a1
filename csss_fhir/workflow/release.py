"""$approve: the admin releases the report. The PDF is rendered and stored, the
DiagnosticReport written, and the report e-mail queued in the same transaction; a job
(`csss_fhir.jobs`) sends it after the commit, never this request: a slow or failing mail
server cannot delay or fail an approval. The AI result is filed as DICOM in the scan's study
(`csss_fhir.dicom_results`) in the same transaction, and queued for the PACS when one is set.

`report_content` and `add_pdf` are shared with `amendments`, which releases later versions.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import history, subscriptions
from csss_fhir.dicom_results import results as dicom_results
from csss_fhir.extensions import Services
from csss_fhir.mail import messages
from csss_fhir.models import Blob, PharmacyReview, Report, Scan, utcnow
from csss_fhir.reports.content import PrescriptionLine, ReportContent
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.reports.scan_images import gradcam_overlay
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import require_recent_second_factor
from csss_fhir.workflow.prescriptions import active as active_prescriptions
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    find_scan,
    locked_task,
    one_winner,
    record_event,
    require_step,
    stored,
    transition,
)

log = logging.getLogger(__name__)


def approve(session: Session, svc: Services, actor: Actor, study_id: str, *,
            code: str | None = None, if_match: str | None = None) -> Report:
    """Release the report: render and store the PDF, and e-mail it to the patient.

    Raises:
        StepNotAllowedError: not an admin. OtpRequiredError / OtpInvalidError: no fresh
        second factor. WrongStateError: the scan is not PHARMACIST_COMPLETED.
    """
    require_step(actor, Step.APPROVE)
    require_recent_second_factor(session, svc, actor, code)
    scan = find_scan(session, study_id)
    task = locked_task(session, scan, Step.APPROVE, if_match)
    approved_at = utcnow()
    report_id = str(uuid.uuid4())
    content = report_content(session, svc, scan, approver_name=actor.name,
                             report_id=report_id, approved_at=approved_at)
    pdf = render_pdf(content)
    with stored(session, svc.store, pdf) as digest, one_winner(session):
        blob = add_pdf(session, scan, digest, pdf)
        report = Report(id=report_id, scan_id=scan.id, patient_id=scan.patient_id,
                        approved_by_id=actor.user_id, issued=approved_at, pdf_id=blob.id,
                        pdf_sha1=hashlib.sha1(pdf).hexdigest())
        session.add(report)
        previous = transition(task, Step.APPROVE)
        session.flush()
        event = record_event(session, actor, task, Step.APPROVE, previous,
                             [f"DiagnosticReport/{report.id}", f"Task/{task.id}"])
        history.record(session, report, task, event)
        subscriptions.record(session, subscriptions.REPORT_RELEASED,
                             f"DiagnosticReport/{report.id}", report.patient_id)
        mail_id = messages.queue_report_mail(session, svc.settings, report, pdf)
        dicom_results.record(session, svc, scan, report, gradcam_png=content.gradcam)
    log.info("report approved", extra={"scan_id": scan.id, "report_id": report.id,
                                       "mail_queued": mail_id is not None})
    return report


def add_pdf(session: Session, scan: Scan, digest: str, pdf: bytes) -> Blob:
    """Add the Blob row of a stored report PDF (stored under `digest`) and give it its id."""
    blob = Blob(sha256=digest, content_type="application/pdf", size=len(pdf),
                patient_id=scan.patient_id)
    session.add(blob)
    session.flush()
    return blob


def report_content(session: Session, svc: Services, scan: Scan, *, approver_name: str,
                   report_id: str, approved_at: datetime) -> ReportContent:
    """Everything the report PDF shows about `scan`, gathered from the steps' records."""
    prediction, review = scan.prediction, scan.review
    pharmacy = session.scalar(  # the latest: a scan sent back is reviewed again
        select(PharmacyReview).where(PharmacyReview.scan_id == scan.id)
        .order_by(PharmacyReview.created_at.desc()))
    prescriptions = active_prescriptions(session, scan.id)  # never a cancelled one
    patient = scan.patient
    image = svc.store.get(scan.image.sha256) if scan.source_format in ("jpeg", "png") else None
    return ReportContent(
        hospital_name=svc.settings.hospital_name, hospital_address=svc.settings.hospital_address,
        report_id=report_id, patient_name=patient.display_name, patient_id=patient.id,
        patient_mrn=patient.mrn, birth_date=patient.birth_date, sex=patient.gender,
        scan_started=scan.started or scan.created_at, modality=scan.modality, image=image,
        ai_label=prediction.label, ai_top_class=prediction.top_class,
        ai_confidence=prediction.confidence, ai_probabilities=dict(prediction.probabilities),
        threshold=prediction.threshold, ai_uncertain=prediction.uncertain,
        model_name=prediction.device.name if prediction.device else "none (image unreadable)",
        model_version=prediction.device.version if prediction.device else "-",
        doctor_name=review.doctor.name, verified_at=review.created_at, finding=review.finding,
        agree=review.agree, doctor_note=review.note,
        pharmacist_name=pharmacy.pharmacist.name, pharmacy_reviewed_at=pharmacy.created_at,
        pharmacy_note=pharmacy.note, approver_name=approver_name, approved_at=approved_at,
        prescriptions=[PrescriptionLine(
            p.medication, p.dose, p.route, p.frequency, p.duration, p.note,
            warnings=tuple(w["message"] for w in p.warnings or ()),
            override_reason=p.override_reason) for p in prescriptions],
        gradcam=(gradcam_overlay(svc.classifier, image, prediction.top_class)
                 if image and prediction.assessable else None),
        timezone=svc.settings.hospital_timezone, emergency_number=svc.settings.emergency_number,
        hospital_phone=svc.settings.hospital_phone,
    )
