"""The patient and what is recorded about their scan: AI result, doctor's review,
prescriptions, pharmacy review and the released report with its amendments.

`ModelDevice` is here because each AI result names the classifier version that made it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from csss_fhir.models.base import UTCDateTime, Versioned, db, new_id, utcnow

if TYPE_CHECKING:
    from csss_fhir.models.accounts import User
    from csss_fhir.models.scans import Blob, Scan


class Patient(Versioned, db.Model):
    __tablename__ = "patient"
    # An MRN is unique within its assigning authority (system), not across all of them.
    __table_args__ = (UniqueConstraint("mrn_system", "mrn"),)

    mrn: Mapped[str | None] = mapped_column(String(64))
    mrn_system: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    given_names: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The Patient resource as the client created it: the elements these columns do not
    # model are served from it (adapters/fhir/common.py `merge_submitted`).
    resource_json: Mapped[dict | None] = mapped_column(JSON)

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.given_names, self.family_name) if part)


class ModelDevice(Versioned, db.Model):
    """A classifier version, served as Device; one row per (name, version, sha256)."""

    __tablename__ = "model_device"
    __table_args__ = (UniqueConstraint("sha256", name="uq_model_device_sha256"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[str] = mapped_column(String(100), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    model_metadata: Mapped[dict] = mapped_column(JSON, nullable=False)


class AiPrediction(Versioned, db.Model):
    """The classifier's proposal: served as the preliminary AI Observation."""

    __tablename__ = "ai_prediction"

    # Several per scan: a doctor's re-run adds one and points the previous one's
    # `superseded_by_id` at it; the one not superseded is the scan's current proposal.
    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    # None: no model judged the image (it could not be decoded; see `assessable`).
    device_id: Mapped[str | None] = mapped_column(ForeignKey("model_device.id"))
    # None: the background job classified the scan on upload, nobody asked for it.
    requested_by_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="preliminary")
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    top_class: Mapped[str] = mapped_column(String(100), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    probabilities: Mapped[dict] = mapped_column(JSON, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    uncertain: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # False: the classifier could not judge this image ("Not assessable", `reason` says why).
    assessable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    superseded_by_id: Mapped[str | None] = mapped_column(ForeignKey("ai_prediction.id"))

    scan: Mapped[Scan] = relationship()
    device: Mapped[ModelDevice | None] = relationship()


class DoctorReview(Versioned, db.Model):
    """The doctor's verification: served as the final Observation.

    A scan sent back to the doctor keeps its earlier verification, `cancelled` with the
    `superseded_reason`; the scan's current review is the one that is not cancelled.
    """

    __tablename__ = "doctor_review"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("ai_prediction.id"), nullable=False)
    doctor_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="final")
    agree: Mapped[bool] = mapped_column(Boolean, nullable=False)
    finding: Mapped[str] = mapped_column(String(100), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    # Blind-read mode: the doctor's finding before the AI proposal was shown.
    provisional_finding: Mapped[str | None] = mapped_column(String(100))
    superseded_reason: Mapped[str | None] = mapped_column(Text)

    prediction: Mapped[AiPrediction] = relationship()
    doctor: Mapped[User] = relationship()


class Prescription(Versioned, db.Model):
    """A pharmacist's prescription: served as MedicationRequest."""

    __tablename__ = "prescription"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    pharmacist_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    intent: Mapped[str] = mapped_column(String(20), nullable=False, default="order")
    medication: Mapped[str] = mapped_column(String(200), nullable=False)
    medication_code: Mapped[dict | None] = mapped_column(JSON)
    dosage_text: Mapped[str | None] = mapped_column(String(500))
    dose: Mapped[str | None] = mapped_column(String(100))
    route: Mapped[str | None] = mapped_column(String(100))
    frequency: Mapped[str | None] = mapped_column(String(100))
    duration: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    authored_on: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The structured dosage as the client sent it (FHIR Dosage JSON), served back unchanged;
    # the text columns above are its summary for the PDF and the pages.
    dosage_instruction: Mapped[list | None] = mapped_column(JSON)
    dispense_request: Mapped[dict | None] = mapped_column(JSON)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # Formulary warnings (formulary.DoseWarning JSON) and the override that accepted them.
    warnings: Mapped[list | None] = mapped_column(JSON)
    override_reason: Mapped[str | None] = mapped_column(Text)
    # The MedicationRequest as the client created it (see Patient.resource_json).
    resource_json: Mapped[dict | None] = mapped_column(JSON)

    pharmacist: Mapped[User] = relationship()


class PharmacyReview(Versioned, db.Model):
    """A completed pharmacy review; after a send-back the latest one counts."""

    __tablename__ = "pharmacy_review"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, index=True)
    pharmacist_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    override_reason: Mapped[str | None] = mapped_column(Text)  # past formulary warnings

    pharmacist: Mapped[User] = relationship()


class Report(Versioned, db.Model):
    """The approved report: served as DiagnosticReport, its PDF as Binary."""

    __tablename__ = "report"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    approved_by_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="final")
    issued: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    pdf_id: Mapped[str] = mapped_column(ForeignKey("blob.id"), nullable=False)
    pdf_sha1: Mapped[str] = mapped_column(String(40), nullable=False)
    # The current finding once an approved amendment corrected it; None: the doctor's.
    finding: Mapped[str | None] = mapped_column(String(100))

    scan: Mapped[Scan] = relationship()
    pdf: Mapped[Blob] = relationship()
    approved_by: Mapped[User] = relationship()


class ReportAmendment(db.Model):
    """A correction of a released report, proposed by a doctor; once an admin approves it,
    the report's next version, with its own PDF."""

    __tablename__ = "report_amendment"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("report.id"), nullable=False, index=True)
    # The report while this amendment waits for approval, None once decided: unique, so a
    # report has at most one pending amendment and of two racing proposals one wins.
    pending_report_id: Mapped[str | None] = mapped_column(ForeignKey("report.id"), unique=True)
    report_version: Mapped[int | None] = mapped_column(Integer)  # None while pending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    author_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # pending|amended|corrected
    note: Mapped[str] = mapped_column(Text, nullable=False)
    finding: Mapped[str | None] = mapped_column(String(100))
    pdf_id: Mapped[str | None] = mapped_column(ForeignKey("blob.id"))  # None while pending
    approved_by_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    report: Mapped[Report] = relationship(foreign_keys=[report_id])
