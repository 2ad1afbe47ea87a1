"""What an upload is and whose it is: the file checks and DICOM patient matching of $upload.

`upload.upload_scan` calls these before it writes anything, so every refusal here leaves
nothing stored. The rules:

- The format comes from the bytes (JPEG, PNG or DICOM), never from the name.
- A DICOM header is authoritative for its UIDs, modality, body part, numbers and study date;
  the form's `modality`/`bodySite`/`description` only fill what the header lacks.
- DICOM PatientID vs the Patient's identifier (MRN): a file whose PatientID is not the named
  Patient's MRN is a 409 and is never merged, with one message whether or not another
  Patient has that MRN (the answer tells nobody which MRNs exist).
  Without a `patient` field, a DICOM upload goes to the one Patient whose MRN is its PatientID.
- One StudyInstanceUID is one scan: a second upload of the same study is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import dicom
from adapters.images import validate_raster
from csss_fhir.errors import ConflictError, InvalidInputError
from csss_fhir.models import Patient, Scan
from csss_fhir.settings import Settings

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class CheckedUpload:
    """A validated file and what the scan records about it."""

    stored: bytes  # what goes into the blob store (a DICOM copy may be stripped)
    content_type: str
    source_format: str  # jpeg | png | dicom
    width: int
    height: int
    dicom: dicom.DicomMetadata | None = None

    @property
    def started(self) -> datetime | None:
        return self.dicom.started if self.dicom else None


def check_file(data: bytes, settings: Settings) -> CheckedUpload:
    """Validate the uploaded bytes completely (full decode) and describe them.

    Raises:
        InvalidInputError, UnsupportedMediaError, UnprocessableContentError: see
        `adapters.images.validate_raster` and `adapters.dicom.read_dicom`.
    """
    if not data:
        raise InvalidInputError("the uploaded file is empty")
    if not dicom.is_dicom(data):
        info = validate_raster(data, max_pixels=settings.max_image_pixels)
        return CheckedUpload(stored=data, content_type=info.content_type,
                             source_format=info.format, width=info.width, height=info.height)
    image = dicom.read_dicom(data, max_pixels=settings.max_image_pixels)
    stored = (dicom.strip_identifying(data, max_pixels=settings.max_image_pixels)
              if settings.dicom_strip_identifying else data)
    metadata = image.metadata
    return CheckedUpload(stored=stored, content_type=dicom.DICOM_CONTENT_TYPE,
                         source_format="dicom", width=metadata.width, height=metadata.height,
                         dicom=metadata)


def match_patient(session: Session, patient_id: str | None, upload: CheckedUpload) -> Patient:
    """The Patient this upload belongs to.

    Raises:
        InvalidInputError: no `patient` and nothing in the file names one; unknown Patient.
        ConflictError: the DICOM PatientID is not the named Patient's identifier (409:
            never silently merged).
    """
    dicom_patient = upload.dicom.patient_id if upload.dicom else None
    owner = None
    if dicom_patient:
        owner = session.scalar(select(Patient).where(Patient.mrn == dicom_patient))
    if not patient_id:
        if owner is None:
            raise InvalidInputError(
                "the 'patient' field (a Patient id) is required"
                + ("; no Patient has the file's DICOM PatientID (0010,0020) as identifier"
                   if dicom_patient else ""))
        return owner
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise InvalidInputError(f"Patient/{patient_id} does not exist")
    if dicom_patient and patient.mrn != dicom_patient:
        # One answer whether or not another Patient has this identifier: the refusal must
        # not tell an uploader (a patient, say) which MRNs exist. A Patient without an MRN
        # has nothing to check the file against, so it is refused the same way.
        raise ConflictError(
            f"the DICOM PatientID (0010,0020) is not the identifier (MRN) of "
            f"Patient/{patient.id}; check that this is the right file and patient, or "
            "upload the file without a PatientID",
            details="patient-mismatch")
    return patient


def refuse_duplicate(session: Session, upload: CheckedUpload) -> None:
    """Raises ConflictError when the file's study is already stored (one study, one scan)."""
    if upload.dicom is None:
        return
    existing = session.scalar(select(Scan.id).where(Scan.study_uid == upload.dicom.study_uid))
    if existing is not None:
        raise ConflictError(
            f"StudyInstanceUID {upload.dicom.study_uid} is already stored as "
            f"ImagingStudy/{existing}; each study is uploaded once", details="duplicate-study")


def classifier_input(data: bytes, source_format: str, settings: Settings) -> bytes | np.ndarray:
    """What `Classifier.predict` takes: the encoded JPEG/PNG, or the DICOM rendered to RGB."""
    if source_format != "dicom":
        return data
    return dicom.read_dicom(data, max_pixels=settings.max_image_pixels).rgb
