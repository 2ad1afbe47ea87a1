"""The workflow's commands: each checks the actor and state against `states.RULES`, makes
its change, records provenance and versions, and commits. The FHIR API and the UI call these.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from adapters.dicom import is_dicom
from adapters.fhir.medication_request import PrescriptionData
from csss_fhir import history
from csss_fhir.classifier import device_for
from csss_fhir.errors import (
    ConflictError,
    InvalidInputError,
    PreconditionFailedError,
    ResourceNotFoundError,
    ResourceValidationError,
)
from csss_fhir.extensions import Services
from csss_fhir.mail import outbox
from csss_fhir.models import (
    AiPrediction,
    Blob,
    DoctorReview,
    Patient,
    PharmacyReview,
    Prescription,
    Report,
    Scan,
    ScanState,
    Task,
    User,
    WorkflowEvent,
    utcnow,
)
from csss_fhir.reports.content import PrescriptionLine, ReportContent
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.reports.scan_images import gradcam_overlay
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import require_recent_second_factor
from csss_fhir.store import BlobStore
from csss_fhir.workflow import ingest
from csss_fhir.workflow.errors import FindingRequiredError, StepNotAllowedError, WrongStateError
from csss_fhir.workflow.states import RULES, Step, may_take

log = logging.getLogger(__name__)

MODALITIES = frozenset({"DX", "CR", "CT", "MR", "US", "OT"})
UNCERTAIN = "Uncertain"


@dataclass(frozen=True)
class UploadRequest:
    data: bytes
    patient_id: str | None
    modality: str | None = None
    body_site: str | None = None
    description: str | None = None


def _require_step(actor: Actor, step: Step) -> None:
    if not may_take(actor.role, actor.scopes, step):
        raise StepNotAllowedError(f"the {actor.role} role may not {step.value} scans")


def _scan(session: Session, study_id: str) -> Scan:
    scan = session.get(Scan, study_id)
    if scan is None:
        raise ResourceNotFoundError(f"ImagingStudy/{study_id} does not exist")
    return scan


def _check_state(task: Task, step: Step) -> None:
    expected = RULES[step].from_state
    if task.state != expected:
        raise WrongStateError(
            f"{step.value} needs the scan in state {expected}; it is in {task.state}",
            details=task.state,
        )


def _check_if_match(task: Task, if_match: str | None) -> None:
    """`If-Match` on a workflow operation names the version of the scan's Task."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(task.version_id):
        raise PreconditionFailedError(
            f"If-Match names version {wanted} of Task/{task.id}; the current version is "
            f"{task.version_id}. Read the Task again and retry."
        )


def _locked_task(session: Session, scan: Scan, step: Step, if_match: str | None) -> Task:
    """Lock the scan's Task row and check the step may start from its state.

    Lock the Task, not the study: the Task is the one row every step of one scan changes.
    """
    task = session.scalar(select(Task).where(Task.scan_id == scan.id).with_for_update())
    _check_state(task, step)
    _check_if_match(task, if_match)
    return task


def _event(session: Session, actor: Actor, task: Task, step: Step, from_state: str | None,
           targets: list[str], device_id: str | None = None) -> WorkflowEvent:
    event = WorkflowEvent(
        scan_id=task.scan_id, patient_id=task.patient_id, task_id=task.id, step=step.value,
        from_state=from_state, to_state=task.state, actor_user_id=actor.user_id,
        actor_client=actor.client_id, actor_reference=actor.reference, targets=targets,
        device_id=device_id,
    )
    session.add(event)
    return event


@contextmanager
def _one_winner(session: Session) -> Iterator[None]:
    """Write a transition so that, of two racing requests, the loser gets a 409.

    The loser is told apart by the database, whichever way it notices first: the Task's
    version moved (StaleDataError), a one-per-scan row already exists (IntegrityError on
    its unique scan_id), or SQLite refused the stale writer (database is locked).
    Nothing of the losing request stays.
    """
    try:
        yield
        session.commit()
    except (StaleDataError, IntegrityError) as err:
        session.rollback()
        raise WrongStateError("another request changed this scan at the same time; "
                              "read it again") from err
    except OperationalError as err:
        session.rollback()
        if "locked" in str(err).lower():
            raise WrongStateError("another request is changing this scan; retry") from err
        raise


@contextmanager
def _stored(session: Session, store: BlobStore, data: bytes) -> Iterator[str]:
    """Store `data` for the enclosed transaction and yield its SHA-256.

    If the block fails, roll back and remove the file again, unless it was already there for
    another row (storage is content-addressed).
    """
    digest, created = store.put(data)
    try:
        yield digest
    except BaseException:
        session.rollback()
        if created:
            store.delete(digest)
        raise


def _transition(session: Session, task: Task, step: Step) -> str:
    previous = task.state
    task.state = RULES[step].to_state
    task.updated_at = utcnow()
    return previous


# --- upload -----------------------------------------------------------------------------

def upload_scan(session: Session, svc: Services, actor: Actor, request: UploadRequest) -> Scan:
    """Store a validated JPEG, PNG or DICOM file as a new scan in PENDING_AI.

    The file checks and the DICOM patient match are in `ingest`.

    Raises:
        StepNotAllowedError: role or patient not allowed; InvalidInputError /
        UnsupportedMediaError / UnprocessableContentError: bad file or form; ConflictError:
        the DICOM file belongs to another patient or its study is already stored. Nothing is
        stored then.
    """
    _require_step(actor, Step.UPLOAD)
    patient_id = request.patient_id
    if actor.is_patient:
        if patient_id and patient_id != actor.patient_id:
            raise StepNotAllowedError("patients may upload scans only for themselves")
        patient_id = actor.patient_id
    if not patient_id and not is_dicom(request.data):
        raise InvalidInputError("the 'patient' field (a Patient id) is required")
    if patient_id and session.get(Patient, patient_id) is None:
        raise InvalidInputError(f"Patient/{patient_id} does not exist")
    form_modality = (request.modality or "").strip().upper() or None
    if form_modality is not None and form_modality not in MODALITIES:
        raise InvalidInputError(
            f"modality {form_modality!r} is not one of {sorted(MODALITIES)}")
    for name, value, limit in (("bodySite", request.body_site, 100),
                               ("description", request.description, 500)):
        if value is not None and len(value) > limit:
            raise InvalidInputError(f"{name} is longer than {limit} characters")
    upload = ingest.check_file(request.data, svc.settings)
    patient = ingest.match_patient(session, patient_id, upload)
    ingest.refuse_duplicate(session, upload)
    header = upload.dicom

    try:
        with _stored(session, svc.store, upload.stored) as digest:
            blob = Blob(sha256=digest, content_type=upload.content_type, size=len(upload.stored),
                        patient_id=patient.id)
            session.add(blob)
            session.flush()
            scan = Scan(
                patient_id=patient.id, uploaded_by_id=actor.user_id,
                uploaded_by_client=actor.client_id, image_id=blob.id,
                modality=(header and header.modality) or form_modality or "DX",
                body_site=(header and header.body_part) or request.body_site or "Chest",
                description=(header and header.study_description) or request.description,
                study_uid=header.study_uid if header else _new_uid(),
                series_uid=header.series_uid if header else _new_uid(),
                instance_uid=header.instance_uid if header else _new_uid(),
                sop_class_uid=header.sop_class_uid if header else None,
                series_number=header.series_number if header else None,
                instance_number=header.instance_number if header else None,
                source_format=upload.source_format, width=upload.width, height=upload.height,
                started=upload.started or utcnow(),
            )
            session.add(scan)
            session.flush()
            task = Task(scan_id=scan.id, patient_id=patient.id, state=ScanState.PENDING_AI)
            session.add(task)
            session.flush()
            event = _event(session, actor, task, Step.UPLOAD, None,
                           [f"ImagingStudy/{scan.id}", f"Task/{task.id}"])
            history.record(session, scan, task, event)
            session.commit()
    except IntegrityError as err:  # the same study uploaded twice at once
        raise ConflictError("this study was stored by another request at the same time"
                            ) from err
    log.info("scan uploaded", extra={"scan_id": scan.id, "format": upload.source_format})
    return scan


def _new_uid() -> str:
    """A DICOM UID from a UUID (the 2.25 root, PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


# --- classify ---------------------------------------------------------------------------

def classify(session: Session, svc: Services, actor: Actor, study_id: str,
             *, if_match: str | None = None) -> AiPrediction:
    """Run the classifier on a PENDING_AI scan; the result is a preliminary proposal."""
    _require_step(actor, Step.CLASSIFY)
    scan = _scan(session, study_id)
    _check_state(scan.task, Step.CLASSIFY)  # fail fast before spending time on inference
    classifier = svc.classifier.get()
    image = ingest.classifier_input(svc.store.get(scan.image.sha256), scan.source_format,
                                    svc.settings)
    prediction = classifier.predict(image, threshold=svc.settings.confidence_threshold)
    session.rollback()  # end the read transaction; the write below starts under a lock

    scan = _scan(session, study_id)
    with _one_winner(session):
        task = _locked_task(session, scan, Step.CLASSIFY, if_match)
        device = device_for(session, classifier.metadata)
        new_device = device in session.new
        session.flush()
        row = AiPrediction(
            scan_id=scan.id, patient_id=scan.patient_id, device_id=device.id,
            requested_by_id=actor.user_id, label=prediction.label, top_class=prediction.top_class,
            confidence=float(prediction.confidence),
            probabilities={k: float(v) for k, v in prediction.probabilities.items()},
            threshold=float(prediction.threshold), uncertain=bool(prediction.uncertain),
        )
        session.add(row)
        previous = _transition(session, task, Step.CLASSIFY)
        session.flush()
        event = _event(session, actor, task, Step.CLASSIFY, previous,
                       [f"Observation/{row.id}", f"Task/{task.id}"], device_id=device.id)
        history.record(session, *([device] if new_device else []), row, task, event)
    log.info("scan classified", extra={"scan_id": scan.id})
    return row


# --- verify -----------------------------------------------------------------------------

def verify(session: Session, actor: Actor, study_id: str, *, note: str, agree: bool,
           finding: str | None, if_match: str | None = None) -> DoctorReview:
    """Record the doctor's finding.

    Raises:
        FindingRequiredError: the AI said Uncertain, or the doctor disagrees, and no finding
            was given (or the finding is "Uncertain").
    """
    _require_step(actor, Step.VERIFY)
    if not note or not note.strip():
        raise InvalidInputError("a clinical note is required to verify a scan")
    scan = _scan(session, study_id)
    with _one_winner(session):
        task = _locked_task(session, scan, Step.VERIFY, if_match)
        prediction = scan.prediction
        if finding is not None and finding.strip().lower() == UNCERTAIN.lower():
            raise FindingRequiredError("'Uncertain' is not a finding; name what the scan shows")
        if prediction.uncertain and not finding:
            raise FindingRequiredError(
                "the AI result is Uncertain: an explicit 'finding' is required to verify"
            )
        if not agree and not finding:
            raise FindingRequiredError("you disagree with the AI: give your 'finding'")
        if agree and finding and not prediction.uncertain and finding != prediction.label:
            raise InvalidInputError(
                f"'agree' is true but the finding {finding!r} differs from the AI's "
                f"{prediction.label!r}; set agree to false"
            )
        if finding and len(finding) > 100:
            raise InvalidInputError("the finding must be at most 100 characters")
        review = DoctorReview(
            scan_id=scan.id, patient_id=scan.patient_id, prediction_id=prediction.id,
            doctor_id=actor.user_id, agree=agree and not prediction.uncertain,
            finding=finding or prediction.label, note=note.strip(),
        )
        session.add(review)
        previous = _transition(session, task, Step.VERIFY)
        session.flush()
        event = _event(session, actor, task, Step.VERIFY, previous,
                       [f"Observation/{review.id}", f"Task/{task.id}"])
        history.record(session, review, task, event)
    log.info("scan verified", extra={"scan_id": scan.id})
    return review


# --- pharmacy ---------------------------------------------------------------------------

def prescribe(session: Session, actor: Actor, data: PrescriptionData) -> Prescription:
    """Add a prescription to a DOCTOR_VERIFIED scan (the state does not change)."""
    _require_step(actor, Step.PRESCRIBE)
    scan = session.get(Scan, data.scan_id)
    if scan is None:
        raise ResourceValidationError(
            f"supportingInformation names ImagingStudy/{data.scan_id}, which does not exist")
    if scan.patient_id != data.patient_id:
        raise ResourceValidationError(
            "MedicationRequest.subject is not the patient of the referenced ImagingStudy")
    for name, value in (("medication", data.medication), ("dose", data.dose),
                        ("route", data.route), ("frequency", data.frequency),
                        ("duration", data.duration)):
        if value is not None and len(value) > 200:
            raise InvalidInputError(f"{name} is longer than 200 characters")
    with _one_winner(session):
        task = _locked_task(session, scan, Step.PRESCRIBE, None)
        row = Prescription(
            scan_id=scan.id, patient_id=scan.patient_id, pharmacist_id=actor.user_id,
            medication=data.medication, medication_code=data.medication_code, dose=data.dose,
            route=data.route, frequency=data.frequency, duration=data.duration,
            dosage_text=data.dosage_text, note=data.note,
        )
        session.add(row)
        session.flush()
        event = _event(session, actor, task, Step.PRESCRIBE, task.state,
                       [f"MedicationRequest/{row.id}"])
        history.record(session, row, event)
    log.info("prescription added", extra={"scan_id": scan.id, "prescription_id": row.id})
    return row


def pharmacy_review(session: Session, actor: Actor, study_id: str, *, note: str,
                    if_match: str | None = None) -> Task:
    _require_step(actor, Step.PHARMACY_REVIEW)
    if not note or not note.strip():
        raise InvalidInputError("a note is required to complete the pharmacy review")
    scan = _scan(session, study_id)
    with _one_winner(session):
        task = _locked_task(session, scan, Step.PHARMACY_REVIEW, if_match)
        review = PharmacyReview(scan_id=scan.id, pharmacist_id=actor.user_id, note=note.strip())
        session.add(review)
        previous = _transition(session, task, Step.PHARMACY_REVIEW)
        session.flush()
        event = _event(session, actor, task, Step.PHARMACY_REVIEW, previous, [f"Task/{task.id}"])
        history.record(session, task, event)
    log.info("pharmacy review completed", extra={"scan_id": scan.id})
    return task


# --- approve ----------------------------------------------------------------------------

def approve(session: Session, svc: Services, actor: Actor, study_id: str, *,
            code: str | None = None, if_match: str | None = None) -> Report:
    """Release the report: render and store the PDF, and e-mail it to the patient."""
    _require_step(actor, Step.APPROVE)
    require_recent_second_factor(session, svc, actor, code)
    scan = _scan(session, study_id)
    task = _locked_task(session, scan, Step.APPROVE, if_match)
    approved_at = utcnow()
    report_id = str(uuid.uuid4())
    pdf = render_pdf(_report_content(session, svc, scan, actor, report_id, approved_at))
    with _stored(session, svc.store, pdf) as digest, _one_winner(session):
        blob = Blob(sha256=digest, content_type="application/pdf", size=len(pdf),
                    patient_id=scan.patient_id)
        session.add(blob)
        session.flush()
        report = Report(id=report_id, scan_id=scan.id, patient_id=scan.patient_id,
                        approved_by_id=actor.user_id, issued=approved_at, pdf_id=blob.id,
                        pdf_sha1=hashlib.sha1(pdf).hexdigest())
        session.add(report)
        previous = _transition(session, task, Step.APPROVE)
        session.flush()
        event = _event(session, actor, task, Step.APPROVE, previous,
                       [f"DiagnosticReport/{report.id}", f"Task/{task.id}"])
        history.record(session, report, task, event)
        mail_row = _queue_report_mail(session, svc, scan.patient, report, pdf)
    log.info("report approved", extra={"scan_id": scan.id, "report_id": report.id})
    if mail_row is not None:
        outbox.deliver(session, svc.mail, [mail_row])
    return report


def _queue_report_mail(session: Session, svc: Services, patient: Patient, report: Report,
                       pdf: bytes) -> str | None:
    recipient = patient.email
    if recipient is None:
        user = session.scalar(select(User).where(User.patient_id == patient.id))
        recipient = user.email if user else None
    if recipient is None:
        log.warning("report not e-mailed: the patient has no e-mail address",
                    extra={"report_id": report.id})
        return None
    context = {"name": patient.display_name, "hospital": svc.settings.hospital_name}
    message = outbox.compose(
        sender=svc.settings.mail_from, recipient=recipient,
        subject=f"Your report from {svc.settings.hospital_name} is ready",
        text=render_template("mail/report.txt", **context),
        html=render_template("mail/report.html", **context),
        attachments=((f"report-{report.id}.pdf", "application/pdf", pdf),),
    )
    return outbox.enqueue(session, message, kind="report", report_id=report.id).id


def _report_content(session: Session, svc: Services, scan: Scan, actor: Actor,
                    report_id: str, approved_at: Any) -> ReportContent:
    prediction, review = scan.prediction, scan.review
    pharmacy = session.scalar(select(PharmacyReview).where(PharmacyReview.scan_id == scan.id))
    prescriptions = session.scalars(select(Prescription).where(
        Prescription.scan_id == scan.id).order_by(Prescription.authored_on)).all()
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
        model_name=prediction.device.name, model_version=prediction.device.version,
        doctor_name=review.doctor.name, verified_at=review.created_at, finding=review.finding,
        agree=review.agree, doctor_note=review.note,
        pharmacist_name=pharmacy.pharmacist.name, pharmacy_reviewed_at=pharmacy.created_at,
        pharmacy_note=pharmacy.note, approver_name=actor.name, approved_at=approved_at,
        prescriptions=[PrescriptionLine(p.medication, p.dose, p.route, p.frequency, p.duration,
                                        p.note) for p in prescriptions],
        gradcam=gradcam_overlay(svc.classifier, image, prediction.top_class) if image else None,
    )
