from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from adapters.fhir.common import CLINICIAN_ASSERTED_FROM_AI, DIAGNOSTIC_SERVICE, LOINC, SNOMED
from adapters.fhir.diagnostic_report import to_fhir_diagnostic_report
from tests.factories import emitted, row

PDF = b"%PDF-1.7 a report"
ISSUED = datetime(2025, 3, 14, 10, 42, tzinfo=UTC)


def report(**fields):
    values = {"id": "rep-1", "status": "final", "patient_id": "pat-1", "scan_id": "scan-1",
              "issued": ISSUED, "pdf_sha1": hashlib.sha1(PDF).hexdigest(),
              "pdf": row(id="bin-1", size=len(PDF)),
              "scan": row(started=None, created_at=datetime(2025, 3, 14, 8, tzinfo=UTC))}
    return row(**{**values, **fields})


def convert(base_url: str | None = None, **fields) -> dict:
    resource = to_fhir_diagnostic_report(
        report(**fields), prediction=row(id="obs-ai"),
        review=row(id="obs-dr", doctor_id="doc-1", finding="Viral_Pneumonia",
                   note="Patchy opacities."), base_url=base_url)
    return emitted(resource, "DiagnosticReport")


def test_a_report_is_clinician_asserted_and_cites_both_observations_and_the_study():
    data = convert()
    assert data["status"] == "final"
    assert data["meta"]["security"] == [CLINICIAN_ASSERTED_FROM_AI]
    assert data["code"]["coding"][0] == {"system": LOINC, "code": "18748-4",
                                         "display": "Diagnostic imaging study"}
    assert data["category"][0]["coding"][0]["system"] == DIAGNOSTIC_SERVICE
    assert data["category"][0]["coding"][0]["code"] == "RAD"
    assert data["subject"] == {"reference": "Patient/pat-1"}
    assert data["performer"] == data["resultsInterpreter"] == [
        {"reference": "Practitioner/doc-1"}]
    assert data["result"] == [{"reference": "Observation/obs-ai"},
                              {"reference": "Observation/obs-dr"}]
    assert data["imagingStudy"] == [{"reference": "ImagingStudy/scan-1"}]
    assert data["conclusion"] == "Viral Pneumonia. Patchy opacities."
    assert data["conclusionCode"][0]["coding"][0] == {"system": SNOMED, "code": "75570004",
                                                      "display": "Viral pneumonia"}
    assert datetime.fromisoformat(data["effectiveDateTime"]) == datetime(2025, 3, 14, 8,
                                                                         tzinfo=UTC)


def test_the_pdf_is_the_presented_form_with_its_size_and_sha1():
    [form] = convert()["presentedForm"]
    assert form["contentType"] == "application/pdf" and form["url"] == "Binary/bin-1"
    assert form["size"] == len(PDF)
    assert base64.b64decode(form["hash"]) == hashlib.sha1(PDF).digest()
    assert datetime.fromisoformat(form["creation"]) == ISSUED


def test_with_a_base_url_the_pdf_url_is_absolute():
    [form] = convert(base_url="https://csss.example/fhir/")["presentedForm"]
    assert form["url"] == "https://csss.example/fhir/Binary/bin-1"


def test_an_amended_report_keeps_its_status():
    assert convert(status="amended")["status"] == "amended"


def test_diagnostic_report_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(convert())
