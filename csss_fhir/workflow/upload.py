"""$upload: a patient's (or an admin's) file becomes a new scan waiting for the AI.

The file checks and the DICOM patient match are in `ingest`; this module checks the form,
decides whose scan it is, and writes the Blob, the Scan (ImagingStudy), its Task, the first
WorkflowEvent and the scan's AiJob in one transaction. The classification runs as a job
after that commit (`csss_fhir.jobs`): the request answers at once, in PENDING_AI, and the
scan moves to AI_ANALYZED by itself.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.dicom import is_dicom
from csss_fhir import history, jobs
from csss_fhir.errors import ConflictError, InvalidInputError
from csss_fhir.extensions import Services
from csss_fhir.models import AiJob, Blob, Patient, Scan, Task, utcnow
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import ingest, staging
from csss_fhir.workflow.errors import StepNotAllowedError
from csss_fhir.workflow.states import RULES, Step
from csss_fhir.workflow.tasks import record_event, require_step, stored

log = logging.getLogger(__name__)

MODALITIES = frozenset({"DX", "CR", "CT", "MR", "US", "OT"})
FORM_LIMITS = {"bodySite": 100, "description": 500}  # characters


@dataclass(frozen=True)
class UploadRequest:
    """What $upload received: the file's bytes and the form's fields, as sent."""

    data: bytes
    patient_id: str | None
    modality: str | None = None
    body_site: str | None = None
    description: str | None = None
    # The staged file (`POST /fhir/Binary`) `data` came from: deleted with the upload's commit.
    staged_binary_id: str | None = None


def upload_scan(session: Session, svc: Services, actor: Actor, request: UploadRequest) -> Scan:
    """Store a validated JPEG, PNG or DICOM file as a new scan in PENDING_AI, and queue its
    classification (sent once the scan is committed).

    Raises:
        StepNotAllowedError: role or patient not allowed; InvalidInputError /
        UnsupportedMediaError / UnprocessableContentError: bad file or form; ConflictError:
        the DICOM file belongs to another patient or its study is already stored. Nothing is
        stored then.
    """
    require_step(actor, Step.UPLOAD)
    patient_id = _uploader_patient(actor, request.patient_id)
    _check_form(session, request, patient_id)
    upload = ingest.check_file(request.data, svc.settings)
    patient = ingest.match_patient(session, patient_id, upload)
    ingest.refuse_duplicate(session, upload)
    try:
        with stored(session, svc.store, upload.stored) as digest:
            scan = _add_scan(session, actor, patient, request, upload, digest)
            # The sweep runs the job again if the scan still waits after the deadline.
            deadline = timedelta(seconds=svc.settings.ai_deadline_seconds)
            session.add(AiJob(scan_id=scan.id, due_at=utcnow() + deadline))
            jobs.enqueue(session, jobs.CLASSIFY_SCAN, scan.id)
            if request.staged_binary_id:
                staging.take(session, request.staged_binary_id)
            session.commit()
    except IntegrityError as err:  # the same study uploaded twice at once
        raise ConflictError("this study was stored by another request at the same time"
                            ) from err
    log.info("scan uploaded", extra={"scan_id": scan.id, "format": upload.source_format})
    return scan


def _uploader_patient(actor: Actor, patient_id: str | None) -> str | None:
    """The Patient the form names; a patient uploads only for themselves."""
    if not actor.is_patient:
        return patient_id
    if patient_id and patient_id != actor.patient_id:
        raise StepNotAllowedError("patients may upload scans only for themselves")
    return actor.patient_id


def _check_form(session: Session, request: UploadRequest, patient_id: str | None) -> None:
    """Refuse a form that names no or an unknown Patient, a modality we do not know, or
    over-long text, before the (costly) file checks."""
    if not patient_id and not is_dicom(request.data):
        raise InvalidInputError("the 'patient' field (a Patient id) is required")
    if patient_id and session.get(Patient, patient_id) is None:
        raise InvalidInputError(f"Patient/{patient_id} does not exist")
    modality = _form_modality(request)
    if modality is not None and modality not in MODALITIES:
        raise InvalidInputError(f"modality {modality!r} is not one of {sorted(MODALITIES)}")
    for name, value in (("bodySite", request.body_site), ("description", request.description)):
        if value is not None and len(value) > FORM_LIMITS[name]:
            raise InvalidInputError(f"{name} is longer than {FORM_LIMITS[name]} characters")


def _form_modality(request: UploadRequest) -> str | None:
    return (request.modality or "").strip().upper() or None


def _add_scan(session: Session, actor: Actor, patient: Patient, request: UploadRequest,
              upload: ingest.CheckedUpload, digest: str) -> Scan:
    """Add the Blob, Scan, Task and first WorkflowEvent (and their history) to the session."""
    blob = Blob(sha256=digest, content_type=upload.content_type, size=len(upload.stored),
                patient_id=patient.id)
    session.add(blob)
    session.flush()
    scan = Scan(patient_id=patient.id, uploaded_by_id=actor.user_id,
                uploaded_by_client=actor.client_id, image_id=blob.id,
                source_format=upload.source_format, width=upload.width, height=upload.height,
                started=upload.started or utcnow(), **_study_fields(request, upload))
    session.add(scan)
    session.flush()
    task = Task(scan_id=scan.id, patient_id=patient.id, state=RULES[Step.UPLOAD].to_state)
    session.add(task)
    session.flush()
    event = record_event(session, actor, task, Step.UPLOAD, None,
                         [f"ImagingStudy/{scan.id}", f"Task/{task.id}"])
    history.record(session, scan, task, event)
    return scan


def _study_fields(request: UploadRequest, upload: ingest.CheckedUpload) -> dict:
    """What the scan says about its study: the DICOM header's values where there is one,
    else the form's, else defaults (a chest X-ray, with new UIDs)."""
    header = upload.dicom
    if header is None:
        return {"modality": _form_modality(request) or "DX",
                "body_site": request.body_site or "Chest",
                "description": request.description,
                "study_uid": _new_uid(), "series_uid": _new_uid(), "instance_uid": _new_uid(),
                "sop_class_uid": None, "series_number": None, "instance_number": None}
    return {"modality": header.modality or _form_modality(request) or "DX",
            "body_site": header.body_part or request.body_site or "Chest",
            "description": header.study_description or request.description,
            "study_uid": header.study_uid, "series_uid": header.series_uid,
            "instance_uid": header.instance_uid, "sop_class_uid": header.sop_class_uid,
            "series_number": header.series_number, "instance_number": header.instance_number}


def _new_uid() -> str:
    """A DICOM UID from a UUID (the 2.25 root, PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"
