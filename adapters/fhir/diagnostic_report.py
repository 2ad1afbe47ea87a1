"""Approved reports -> FHIR DiagnosticReport with the PDF as presentedForm."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from adapters.fhir.common import (
    CLINICIAN_ASSERTED_FROM_AI,
    DIAGNOSTIC_SERVICE,
    LOINC,
    finding_concept,
    instant,
    meta,
    reference,
)

REPORT_CODE = {"coding": [{"system": LOINC, "code": "18748-4",
                           "display": "Diagnostic imaging study"}],
               "text": "Chest X-ray report (AI-assisted)"}


def conclusion(finding: str, review: Any, amendment_notes: Sequence[str]) -> str:
    """The current finding first; then what the approved amendments said and, when there are
    any, the doctor's initial reading, so the text never contradicts conclusionCode."""
    words = finding.replace("_", " ")
    if not amendment_notes:
        return f"{words}. {review.note}"
    amended = " ".join(f"Amendment: {note}" for note in amendment_notes)
    return (f"{words}. {amended} Initial report: {review.finding.replace('_', ' ')}. "
            f"{review.note}")


def to_fhir_diagnostic_report(report: Any, *, prediction: Any, review: Any,
                              base_url: str | None = None, finding: str | None = None,
                              amendment_notes: Sequence[str] = ()) -> DiagnosticReport:
    """`finding`: the current finding when an approved amendment corrected the doctor's."""
    finding = finding or review.finding
    pdf = report.pdf
    url = f"Binary/{pdf.id}"
    if base_url:
        url = f"{base_url.rstrip('/')}/{url}"
    return DiagnosticReport.model_validate({
        "resourceType": "DiagnosticReport",
        "id": report.id,
        # Released only after a doctor verified the AI proposal: clinician-asserted content
        # that was first reported by an AI (AI Transparency IG).
        "meta": meta(report, security=[CLINICIAN_ASSERTED_FROM_AI]),
        "status": report.status,
        "category": [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "RAD",
                                  "display": "Radiology"}]}],
        "code": REPORT_CODE,
        "subject": reference("Patient", report.patient_id),
        "effectiveDateTime": instant(report.scan.started or report.scan.created_at),
        "issued": instant(report.issued),
        "performer": [reference("Practitioner", review.doctor_id)],
        "resultsInterpreter": [reference("Practitioner", review.doctor_id)],
        "result": [reference("Observation", prediction.id),
                   reference("Observation", review.id)],
        "imagingStudy": [reference("ImagingStudy", report.scan_id)],
        "conclusion": conclusion(finding, review, amendment_notes),
        "conclusionCode": [finding_concept(finding)],
        "presentedForm": [{
            "contentType": "application/pdf",
            "language": "en",
            "url": url,
            "size": pdf.size,
            "hash": base64.b64encode(bytes.fromhex(report.pdf_sha1)).decode("ascii"),
            "title": "Chest X-ray report",
            "creation": instant(report.issued),
        }],
    })
