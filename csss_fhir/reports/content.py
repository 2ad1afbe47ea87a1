"""What a report says, as plain values gathered by the workflow before rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

AI_NOTICE = (
    "This report was generated with AI assistance and has been reviewed and approved by a "
    "qualified medical professional before release."
)


@dataclass(frozen=True)
class PrescriptionLine:
    medication: str
    dose: str | None
    route: str | None
    frequency: str | None
    duration: str | None
    note: str | None
    warnings: tuple[str, ...] = ()  # formulary warnings on the dose
    override_reason: str | None = None  # the pharmacist's reason for going past them


@dataclass(frozen=True)
class Amendment:
    """A correction of a released report, proposed by a doctor and approved by an
    administrator: it makes a new version with a new PDF."""

    author_name: str
    author_role: str
    at: datetime
    note: str
    finding: str | None  # the corrected finding, None: the finding stands
    approved_by: str | None = None  # the administrator who released it


@dataclass(frozen=True)
class ReportContent:
    hospital_name: str
    hospital_address: str
    report_id: str
    patient_name: str
    patient_id: str
    patient_mrn: str | None
    birth_date: date | None
    sex: str | None
    scan_started: datetime
    modality: str
    image: bytes | None  # the scan as JPEG/PNG for the thumbnail
    ai_label: str
    ai_top_class: str
    ai_confidence: float
    ai_probabilities: dict[str, float]
    threshold: float
    ai_uncertain: bool
    model_name: str
    model_version: str
    doctor_name: str
    verified_at: datetime
    finding: str
    agree: bool
    doctor_note: str
    pharmacist_name: str
    pharmacy_reviewed_at: datetime
    pharmacy_note: str
    approver_name: str
    approved_at: datetime
    prescriptions: list[PrescriptionLine] = field(default_factory=list)
    gradcam: bytes | None = None  # the Grad-CAM overlay as PNG, None: not available
    status: str = "final"  # final | amended | corrected
    version: int = 1
    amendments: list[Amendment] = field(default_factory=list)
    timezone: str = "UTC"  # HOSPITAL_TIMEZONE: every time in the PDF is shown in it
    emergency_number: str = ""  # EMERGENCY_NUMBER, "" leaves the emergency line out
    hospital_phone: str = ""  # HOSPITAL_PHONE

    @property
    def report_number(self) -> str:
        """The number a person reads out or types ("6F1C-2E0A"): the report id's first eight
        hex digits. The full id stays in the PDF's small print for machines."""
        digits = self.report_id.replace("-", "")[:8].upper()
        return f"{digits[:4]}-{digits[4:]}"

    @property
    def current_finding(self) -> str:
        """The finding that stands: the latest amendment's correction, else the doctor's."""
        corrected = [a.finding for a in self.amendments if a.finding]
        return corrected[-1] if corrected else self.finding
