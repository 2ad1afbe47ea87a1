"""The AI result of a released report as DICOM: the derived instances and their PACS export.

`DicomResult` is one derived instance (the Structured Report or the Grad-CAM Secondary
Capture) in the scan's own study: WADO-RS and QIDO-RS serve it beside the scan. `PacsExport`
is the C-STORE of one report version's instances to PACS_DESTINATION, the row the job
(`csss_fhir.jobs`, `send_dicom`) claims: its state, attempts, back-off and last error.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from csss_fhir.models.base import UTCDateTime, db, new_id, utcnow

if TYPE_CHECKING:
    from csss_fhir.models.clinical import Patient
    from csss_fhir.models.scans import Blob, Scan


class DicomResult(db.Model):
    """One derived DICOM instance of a report version (kind "sr" or "sc")."""

    __tablename__ = "dicom_result"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("report.id"), nullable=False, index=True)
    report_version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(4), nullable=False)  # sr | sc
    series_uid: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    instance_uid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    modality: Mapped[str] = mapped_column(String(16), nullable=False)  # SR | OT
    series_number: Mapped[int] = mapped_column(Integer, nullable=False)
    instance_number: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int | None] = mapped_column(Integer)  # None for the SR (no pixels)
    width: Mapped[int | None] = mapped_column(Integer)
    image_id: Mapped[str] = mapped_column(ForeignKey("blob.id"), nullable=False)

    scan: Mapped[Scan] = relationship()
    patient: Mapped[Patient] = relationship()
    image: Mapped[Blob] = relationship()

    @property
    def study_uid(self) -> str:
        """The original study's UID: the result is filed beside the scan."""
        return self.scan.study_uid


class PacsExport(db.Model):
    """The C-STORE of one report version's derived instances to PACS_DESTINATION.

    state: "pending" (due at `due_at`), "sent", or "failed" (PACS_MAX_ATTEMPTS tried; the
    last error says why). The unique (report, version) makes the job idempotent.
    """

    __tablename__ = "pacs_export"
    __table_args__ = (UniqueConstraint("report_id", "report_version",
                                       name="uq_pacs_export_report_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    report_id: Mapped[str] = mapped_column(ForeignKey("report.id"), nullable=False)
    report_version: Mapped[int] = mapped_column(Integer, nullable=False)
    destination: Mapped[str] = mapped_column(String(300), nullable=False)  # AE@host:port
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="pending",
                                       index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
