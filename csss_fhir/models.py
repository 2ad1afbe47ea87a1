"""SQLAlchemy models: the domain's tables. FHIR shapes live in `adapters/fhir`, not here.

Every table that is served as a FHIR resource has a UUID `id`, a `version_id` (SQLAlchemy's
version counter: an UPDATE that finds another version fails, which is how two concurrent
writers are told apart) and `updated_at`; each committed version is also kept as JSON in
`resource_history` for vread.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


class Role(enum.StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    PHARMACIST = "pharmacist"
    ADMIN = "admin"


class ScanState(enum.StrEnum):
    PENDING_AI = "PENDING_AI"
    AI_ANALYZED = "AI_ANALYZED"
    DOCTOR_VERIFIED = "DOCTOR_VERIFIED"
    PHARMACIST_COMPLETED = "PHARMACIST_COMPLETED"
    REPORT_READY = "REPORT_READY"


class Versioned:
    """Columns of a table served as a FHIR resource."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version_id}


class Patient(Versioned, db.Model):
    __tablename__ = "patient"

    mrn: Mapped[str | None] = mapped_column(String(64), unique=True)
    mrn_system: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    given_names: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.given_names, self.family_name) if part)


class User(Versioned, db.Model):
    """A person who logs in. Staff users are served as Practitioner resources."""

    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patient.id"), unique=True)

    patient: Mapped[Patient | None] = relationship()


class OtpCode(db.Model):
    """An e-mailed one-time code, stored only as a hash."""

    __tablename__ = "otp_code"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False, index=True)
    code_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    prediction: Mapped[AiPrediction | None] = relationship(
        "AiPrediction", viewonly=True, uselist=False)
    review: Mapped[DoctorReview | None] = relationship(
        "DoctorReview", viewonly=True, uselist=False)
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

    scan: Mapped[Scan] = relationship(back_populates="task")


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

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("model_device.id"), nullable=False)
    requested_by_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="preliminary")
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    top_class: Mapped[str] = mapped_column(String(100), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    probabilities: Mapped[dict] = mapped_column(JSON, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    uncertain: Mapped[bool] = mapped_column(Boolean, nullable=False)

    scan: Mapped[Scan] = relationship()
    device: Mapped[ModelDevice] = relationship()


class DoctorReview(Versioned, db.Model):
    """The doctor's verification: served as the final Observation."""

    __tablename__ = "doctor_review"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), nullable=False, index=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("ai_prediction.id"), nullable=False)
    doctor_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="final")
    agree: Mapped[bool] = mapped_column(Boolean, nullable=False)
    finding: Mapped[str] = mapped_column(String(100), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)

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

    pharmacist: Mapped[User] = relationship()


class PharmacyReview(Versioned, db.Model):
    __tablename__ = "pharmacy_review"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scan.id"), nullable=False, unique=True)
    pharmacist_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)

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

    scan: Mapped[Scan] = relationship()
    pdf: Mapped[Blob] = relationship()
    approved_by: Mapped[User] = relationship()


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


class ResourceVersion(db.Model):
    """Each committed version of each served resource, as FHIR JSON, for vread and _history."""

    __tablename__ = "resource_version"
    __table_args__ = (UniqueConstraint("resource_type", "resource_id", "version_id",
                                       name="uq_resource_version_key"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(40), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class MailMessage(db.Model):
    """An e-mail to send; written in the transaction that decides to send it."""

    __tablename__ = "mail_message"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # otp | report
    report_id: Mapped[str | None] = mapped_column(ForeignKey("report.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The outbox sender's bookkeeping (mail/outbox.py): when a pending row is next due, and
    # until when a sender that claimed it ("sending") holds it.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportAmendment(db.Model):
    """A correction of a released report: the report's next version, with its own PDF."""

    __tablename__ = "report_amendment"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("report.id"), nullable=False, index=True)
    report_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    author_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # amended | corrected
    note: Mapped[str] = mapped_column(Text, nullable=False)
    finding: Mapped[str | None] = mapped_column(String(100))
    pdf_id: Mapped[str] = mapped_column(ForeignKey("blob.id"), nullable=False)

    author: Mapped[User] = relationship()


# --- security (issue 4): lockout, TOTP, token deny-list, system clients, audit ----------

class AuthThrottle(db.Model):
    """Failed sign-in attempts for one account key, and the lock they led to.

    The key is an HMAC of the normalised username, so unknown usernames lock exactly like
    real ones (the answer never tells whether an account exists).
    """

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lock_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class TotpCredential(db.Model):
    """A user's TOTP authenticator (RFC 6238): the secret encrypted, the last step used."""

    __tablename__ = "totp_credential"

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(String(255), nullable=False)
    last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class RevokedToken(db.Model):
    """A JWT that was logged out before it expired (kept until it would have expired)."""

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ApiClient(db.Model):
    """A hospital system that signs in with client_credentials; the secret stored hashed."""

    __tablename__ = "api_client"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    scopes: Mapped[str] = mapped_column(String(1000), nullable=False)  # space-separated
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AuditRecord(Versioned, db.Model):
    """One audited event (sign-in, access to patient data, export): served as AuditEvent.

    One row per patient touched (IHE BALP), so `AuditEvent?patient=` finds every access.
    Never holds passwords, codes or tokens.
    """

    __tablename__ = "audit_event"

    recorded: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow,
                                               index=True)
    type_code: Mapped[str] = mapped_column(String(20), nullable=False)
    subtype_code: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(1), nullable=False)  # C R U D E
    outcome: Mapped[str] = mapped_column(String(2), nullable=False)  # 0 4 8 12
    agent_reference: Mapped[str | None] = mapped_column(String(80), index=True)
    agent_client_id: Mapped[str | None] = mapped_column(String(36), index=True)
    agent_role: Mapped[str | None] = mapped_column(String(20))
    source_address: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(36), index=True)
    entities: Mapped[list] = mapped_column(JSON, nullable=False)  # ["ImagingStudy/<id>", ...]
    query: Mapped[str | None] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(200))
