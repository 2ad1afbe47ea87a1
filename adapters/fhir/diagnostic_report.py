"""Approved reports -> FHIR DiagnosticReport with the PDF as presentedForm."""

from __future__ import annotations

import base64
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


def to_fhir_diagnostic_report(report: Any, *, prediction: Any, review: Any,
                              base_url: str | None = None) -> DiagnosticReport:
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
        "conclusion": f"{review.finding.replace('_', ' ')}. {review.note}",
        "conclusionCode": [finding_concept(review.finding)],
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
