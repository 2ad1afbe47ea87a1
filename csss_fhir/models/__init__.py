"""models: the domain's tables, one module per domain. FHIR shapes live in `adapters/fhir`.

- `base`: `db`, the declarative base, `Versioned`, ids and UTC times;
- `accounts`: users, system clients and how they sign in;
- `scans`: stored files, scans, their Tasks and workflow events;
- `clinical`: patients and what is recorded about a scan, up to the report;
- `records`: resource versions (vread) and the audit trail;
- `mail`: the e-mail outbox;
- `dicom_results`: a released AI result as DICOM instances and their PACS export.

Import from the package (`from csss_fhir.models import Scan`): it re-exports every model
(`ScanState` lives in `workflow.states` and `Role` in `security.access`, beside their rules),
and importing it registers every table on `db.metadata`, which Alembic compares against.
"""

from __future__ import annotations

from csss_fhir.models.accounts import (
    ApiClient,
    AuthorizationCode,
    AuthThrottle,
    LaunchContext,
    OtpCode,
    RevokedToken,
    TotpCredential,
    UsedClientAssertion,
    User,
)
from csss_fhir.models.base import NAMING, Base, UTCDateTime, Versioned, db, new_id, utcnow
from csss_fhir.models.clinical import (
    AiPrediction,
    DoctorReview,
    ModelDevice,
    Patient,
    PharmacyReview,
    Prescription,
    Report,
    ReportAmendment,
)
from csss_fhir.models.dicom_results import DicomResult, PacsExport
from csss_fhir.models.mail import MailMessage
from csss_fhir.models.records import AuditRecord, ResourceVersion
from csss_fhir.models.scans import (
    AiJob,
    Blob,
    BlobContent,
    Scan,
    StagedBinary,
    Task,
    WorkflowEvent,
)
from csss_fhir.models.subscriptions import Subscription, SubscriptionEvent
from csss_fhir.security.access import Role

__all__ = [
    "NAMING", "AiJob", "AiPrediction", "ApiClient", "AuditRecord", "AuthThrottle",
    "AuthorizationCode", "Base", "Blob", "BlobContent", "DicomResult", "DoctorReview",
    "LaunchContext", "MailMessage", "ModelDevice", "OtpCode", "PacsExport", "Patient",
    "PharmacyReview", "Prescription", "Report", "ReportAmendment", "ResourceVersion",
    "RevokedToken", "Role", "Scan", "StagedBinary", "Subscription", "SubscriptionEvent", "Task",
    "TotpCredential", "UTCDateTime", "UsedClientAssertion", "User", "Versioned",
    "WorkflowEvent", "db", "new_id", "utcnow",
]
