"""DICOM received from the network (STOW-RS, C-STORE): the same ingest as $upload, plus the
rules of a door that machines push to.

Each instance goes through `upload.upload_scan`, so its checks, patient match, storage and
workflow are those of `$upload`. Before that, three rules that a form upload does not need:

- Only radiographs (Modality CR or DX) become scans: the classifier reads chest X-rays, and a
  PACS that forwards a whole worklist must not fill the doctors' queue with CT and MR.
- The same SOP Instance UID sent again is not stored again: retries and re-sends from a PACS
  are normal, so the answer is "stored" with the scan that already holds it.
- A STOW-RS request to `/studies/{study}` carries only instances of that study.

The Patient is the one whose MRN is the instance's PatientID (0010,0020): the sender names no
`patient` field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import dicom
from csss_fhir.errors import ConflictError, PayloadTooLargeError, UnprocessableContentError
from csss_fhir.extensions import Services
from csss_fhir.models import Patient, Scan
from csss_fhir.security.actor import Actor
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import require_step
from csss_fhir.workflow.upload import UploadRequest, upload_scan

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX"})


class NotRadiographError(UnprocessableContentError):
    """A valid image that is not a radiograph (CT, MR, NM...): not for this classifier."""


class IdentifierMismatchError(ConflictError):
    """The instance names a patient or study that does not match (PS3.18: 0xA900)."""


class Outcome(enum.StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already-stored"


@dataclass(frozen=True)
class ReceivedInstance:
    scan: Scan
    outcome: Outcome
    sop_class_uid: str | None
    sop_instance_uid: str


def require_sender(actor: Actor) -> None:
    """Raises StepNotAllowedError unless the actor may send instances (the upload step):
    checked once per request, before the body is read."""
    require_step(actor, Step.UPLOAD)


def receive_instance(session: Session, svc: Services, actor: Actor, data: bytes, *,
                     study_uid: str | None = None) -> ReceivedInstance:
    """Store one DICOM instance pushed by a PACS or modality as a new scan (or find it).

    Raises:
        StepNotAllowedError: the actor may not upload. PayloadTooLargeError: larger than
        MAX_UPLOAD_MB. NotRadiographError: not CR/DX. IdentifierMismatchError: another study
        than `study_uid`, or no Patient has its PatientID. And every refusal of `upload_scan`
        (not DICOM, corrupt, undecodable, patient mismatch, study already stored).
    """
    require_step(actor, Step.UPLOAD)
    limit = svc.settings.max_upload_bytes
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"the instance is {len(data):,} bytes; the limit is {limit:,} bytes "
            f"(MAX_UPLOAD_MB={svc.settings.max_upload_mb})")
    header = dicom.describe(data, max_pixels=svc.settings.max_image_pixels)
    if study_uid is not None and header.study_uid != study_uid:
        raise IdentifierMismatchError(
            f"the instance's StudyInstanceUID (0020,000D) is {header.study_uid}, not the "
            f"study {study_uid} named in the URL; POST it to /dicomweb/studies instead",
            details="study-mismatch")
    existing = _stored(session, header.instance_uid)
    if existing is not None:
        return _already_stored(actor, header, existing)
    if header.modality not in RADIOGRAPH_MODALITIES:
        raise NotRadiographError(
            f"Modality (0008,0060) is {header.modality or '(missing)'}; this service "
            "classifies radiographs only: send CR or DX images")
    patient_id = _patient_of(session, actor, header)
    try:
        scan = upload_scan(session, svc, actor, UploadRequest(data=data, patient_id=patient_id))
    except ConflictError:
        existing = _stored(session, header.instance_uid)  # sent twice at the same time
        if existing is None:
            raise
        return _already_stored(actor, header, existing)
    return ReceivedInstance(scan, Outcome.STORED, header.sop_class_uid, header.instance_uid)


def _already_stored(actor: Actor, header: dicom.DicomMetadata, existing: Scan
                    ) -> ReceivedInstance:
    """The scan that holds this instance, if the sender could have stored it there: a
    re-send must not tell anyone about another patient's instance.

    Raises:
        IdentifierMismatchError: the instance is stored for another Patient than the one
            the sender (a patient) or its PatientID names.
    """
    owner = existing.patient
    same = (owner.id == actor.patient_id if actor.is_patient
            else bool(header.patient_id) and owner.mrn == header.patient_id)
    if not same:
        raise IdentifierMismatchError(
            "this SOP Instance UID is already stored for another patient; check the "
            "instance's PatientID (0010,0020) and UIDs", details="patient-mismatch")
    return ReceivedInstance(existing, Outcome.ALREADY_STORED, header.sop_class_uid,
                            header.instance_uid)


def _stored(session: Session, instance_uid: str) -> Scan | None:
    session.rollback()  # see rows committed by others since this session began
    return session.scalar(select(Scan).where(Scan.instance_uid == instance_uid,
                                             Scan.source_format == "dicom"))


def _patient_of(session: Session, actor: Actor, header: dicom.DicomMetadata) -> str | None:
    """The Patient the instance's PatientID names (a patient pushing: themselves)."""
    if actor.is_patient:
        return actor.patient_id
    if not header.patient_id:
        raise IdentifierMismatchError(
            "the instance has no PatientID (0010,0020); set it to the patient's MRN",
            details="unknown-patient")
    patient = session.scalar(select(Patient.id).where(Patient.mrn == header.patient_id))
    if patient is None:
        raise IdentifierMismatchError(
            "no Patient has this instance's PatientID (0010,0020) as identifier (MRN); "
            "register the Patient first, then send the instance again",
            details="unknown-patient")
    return patient
