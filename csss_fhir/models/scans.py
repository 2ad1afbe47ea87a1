"""An uploaded scan and its workflow: the stored file, the study, its Task and state changes.

The Task row is what each workflow step locks; `csss_fhir.workflow` decides the steps.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from csss_fhir.models.base import UTCDateTime, Versioned, db, new_id, utcnow

if TYPE_CHECKING:
    from csss_fhir.models.clinical import AiPrediction, DoctorReview, Patient, Report


class Blob(db.Model):
    """A stored file (scan image or PDF), content-addressed by SHA-256; served as Binary."""

    __tablename__ = "blob"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)


class StagedBinary(db.Model):
    """A file posted as a FHIR Binary (`POST /fhir/Binary`) for a later $upload to name as
    `Binary/<id>`. Kept apart from the Blobs (it belongs to no Patient yet) and deleted by
    the $upload that takes it (`workflow/staging.py`)."""

    __tablename__ = "staged_binary"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    owner_user_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    owner_client_id: Mapped[str | None] = mapped_column(String(100))


class BlobContent(db.Model):
    """The bytes of a blob when STORAGE_BACKEND=postgresql (`storage/database.py`).

    Keyed by SHA-256 like the files of the file backend; many `blob` rows may name one.
    `stored_at` is refreshed whenever the bytes are stored again, for the garbage collector.
    """

    __tablename__ = "blob_content"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class Scan(Versioned, db.Model):
    """One uploaded scan: served as ImagingStudy."""

    __tablename__ = "scan"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    uploaded_by_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_by_client: Mapped[str | None] = mapped_column(String(100))
    image_id: Mapped[str] = mapped_column(ForeignKey("blob.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="registered")
    modality: Mapped[str] = mapped_column(String(16), nullable=False, default="DX")
    body_site: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    study_uid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    series_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    instance_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    sop_class_uid: Mapped[str | None] = mapped_column(String(64))
    series_number: Mapped[int | None] = mapped_column(Integer)  # DICOM SeriesNumber
    instance_number: Mapped[int | None] = mapped_column(Integer)  # DICOM InstanceNumber
    source_format: Mapped[str] = mapped_column(String(10), nullable=False)  # jpeg|png|dicom
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    image: Mapped[Blob] = relationship()
    task: Mapped[Task] = relationship(back_populates="scan", uselist=False)
    # The current AI proposal: the one no re-run has superseded.
    prediction: Mapped[AiPrediction | None] = relationship(
        "AiPrediction", viewonly=True, uselist=False,
        primaryjoin="and_(AiPrediction.scan_id == Scan.id, "
                    "AiPrediction.superseded_by_id.is_(None))")
    # The current verification: a superseded one (sent back) is cancelled.
    review: Mapped[DoctorReview | None] = relationship(
        "DoctorReview", viewonly=True, uselist=False,
        primaryjoin="and_(Scan.id == foreign(DoctorReview.scan_id), "
                    "DoctorReview.status != 'cancelled')")
    report: Mapped[Report | None] = relationship("Report", viewonly=True, uselist=False)


class Task(Versioned, db.Model):
    """The workflow of one scan; `state` is the Task's businessStatus.

    Every transition locks this row and bumps `version_id`, so of two concurrent steps on one
    scan exactly one commits.
    """

    __tablename__ = "task"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    priority: Mapped[str] = mapped_column(String(10), nullable=False, default="routine",
                                          server_default="routine")  # routine | urgent
    status_reason: Mapped[str | None] = mapped_column(Text)  # why the scan was returned

    scan: Mapped[Scan] = relationship(back_populates="task")


class WorkflowEvent(Versioned, db.Model):
    """One state change (who, when, what): served as Provenance."""

    __tablename__ = "workflow_event"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("task.id"), nullable=False)
    step: Mapped[str] = mapped_column(String(30), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30), nullable=False)
    actor_user_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"))
    actor_client: Mapped[str | None] = mapped_column(String(100))
    actor_reference: Mapped[str | None] = mapped_column(String(80))  # "Practitioner/<id>"
    targets: Mapped[list] = mapped_column(JSON, nullable=False)  # ["Observation/<id>", ...]
    device_id: Mapped[str | None] = mapped_column(ForeignKey("model_device.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # a return's or send-back's reason


class AiJob(db.Model):
    """The background classification of one scan: its attempts and claim (jobs/classify.py).

    Kept apart from Task, whose version is the scan's workflow version: a worker's retries
    must not move the ETag a doctor's If-Match names. The row is the job's key: whatever
    queue delivers the message, the job claims this row first, so a duplicate is a no-op.
    """

    __tablename__ = "ai_job"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # When the sweep enqueues it again if it is still waiting, and until when a worker that
    # claimed it holds it (a killed worker's claim lapses).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

