"""Append-only records the service keeps about itself: every version of every served
resource (for vread and _history) and the audit trail (served as AuditEvent).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from csss_fhir.models.base import UTCDateTime, Versioned, db, utcnow


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
