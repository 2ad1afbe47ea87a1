"""MedicationRequest create/update: structured doses kept as sent, corrections and
cancellations as new versions until the pharmacy review ends, formulary warnings, and the
override the review needs past them (printed in the PDF)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from pypdf import PdfReader

from csss_fhir.models import Report, Scan, db, utcnow
from tests.factories import make_scan, make_user, medication_request, parameters, parse_fhir

FHIR_JSON = {"Content-Type": "application/fhir+json"}
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"


def structured(patient_id: str, study_id: str, drug: str, value: float, unit: str,
               per_day: int) -> dict:
    body = medication_request(patient_id, study_id, drug)
    body["dosageInstruction"] = [{
        "route": {"coding": [{"system": SNOMED, "code": "26643006",
                              "display": "Oral route"}]},
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d",
                              "boundsDuration": {"value": 5, "unit": "days", "system": UCUM,
                                                 "code": "d"}}},
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM,
                                          "code": unit}}],
    }]
    return body


@pytest.fixture
def verified(app):
    """A DOCTOR_VERIFIED scan of a 40-year-old: (study id, patient id)."""
    with app.app_context():
        patient = make_user("patient", birth_date=utcnow().date() - timedelta(days=40 * 366))[0]
        scan_id, _ = make_scan("DOCTOR_VERIFIED", patient=patient)
        return scan_id, patient.patient_id


def create(client, headers, body) -> dict:
    response = client.post("/fhir/MedicationRequest", headers={**headers, **FHIR_JSON},
                           json=body)
    assert response.status_code == 201, response.data
    parse_fhir(response.data, "MedicationRequest")
    return response.get_json()


def put(client, headers, body, *, version: str | None = None):
    extra = {"If-Match": f'W/"{version}"'} if version else {}
    return client.put(f"/fhir/MedicationRequest/{body['id']}",
                      headers={**headers, **FHIR_JSON, **extra}, json=body)


def pdf_text(client, headers, report_id: str) -> str:
    report = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}",
                                   headers=headers).data)
    data = client.get(f"/fhir/{report.presentedForm[0].url}", headers=headers).data
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
                    .split())


def test_a_correction_is_a_new_version_and_the_dose_is_kept_as_sent(client, as_role,
                                                                    verified):
    study_id, patient_id = verified
    pharmacist = as_role("pharmacist")
    body = structured(patient_id, study_id, "Amoxicillin", 500, "mg", 3)
    created = create(client, pharmacist, body)
    assert created["dosageInstruction"] == body["dosageInstruction"]
    assert "detectedIssue" not in created

    corrected = {**created, "dosageInstruction": structured(
        patient_id, study_id, "Amoxicillin", 1, "g", 3)["dosageInstruction"]}
    response = put(client, pharmacist, corrected, version="1")
    assert response.status_code == 200, response.data
    assert response.headers["ETag"] == 'W/"2"'
    updated = parse_fhir(response.data, "MedicationRequest")
    assert updated.meta.versionId == "2"
    assert response.get_json()["dosageInstruction"] == corrected["dosageInstruction"]

    first = client.get(f"/fhir/MedicationRequest/{created['id']}/_history/1",
                       headers=pharmacist).get_json()
    assert first["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 500
    history = parse_fhir(client.get(f"/fhir/MedicationRequest/{created['id']}/_history",
                                    headers=pharmacist).data, "Bundle")
    assert history.total == 2


def test_updates_are_guarded_by_role_version_id_and_subject(client, as_role, verified):
    study_id, patient_id = verified
    pharmacist = as_role("pharmacist")
    created = create(client, pharmacist, structured(patient_id, study_id, "Ibuprofen", 400,
                                                    "mg", 3))
    for role in ("doctor", "admin", "patient"):
        assert put(client, as_role(role), created).status_code == 403, role
    assert put(client, pharmacist, created, version="9").status_code == 412
    mismatched = client.put(f"/fhir/MedicationRequest/{created['id']}",
                            headers={**pharmacist, **FHIR_JSON}, json={**created, "id": "x"})
    assert mismatched.status_code == 400
    with client.application.app_context():
        other_patient = make_user("patient")[0].patient_id
    moved = {**created, "subject": {"reference": f"Patient/{other_patient}"}}
    assert put(client, pharmacist, moved).status_code == 422
    assert client.put("/fhir/MedicationRequest/nope", headers={**pharmacist, **FHIR_JSON},
                      json={**created, "id": "nope"}).status_code == 404
    assert client.put(f"/fhir/ImagingStudy/{study_id}", headers={**pharmacist, **FHIR_JSON},
                      json={"resourceType": "ImagingStudy"}).status_code == 405


def test_a_cancelled_prescription_stays_in_history_and_is_never_printed(app, client, as_role,
                                                                        verified):
    study_id, patient_id = verified
    pharmacist = as_role("pharmacist")
    wrong = create(client, pharmacist, structured(patient_id, study_id, "Doxycycline", 100,
                                                  "mg", 2))
    kept = create(client, pharmacist, structured(patient_id, study_id, "Paracetamol", 1,
                                                 "g", 4))
    cancelled = {**wrong, "status": "entered-in-error",
                 "statusReason": {"text": "wrong patient"}}
    response = put(client, pharmacist, cancelled, version="1")
    assert response.status_code == 200, response.data
    assert parse_fhir(response.data).status == "entered-in-error"
    assert put(client, pharmacist, {**wrong, "status": "active"}).status_code == 409
    assert client.get(f"/fhir/MedicationRequest/{wrong['id']}/_history/1",
                      headers=pharmacist).get_json()["status"] == "active"
    active = client.get(f"/fhir/MedicationRequest?status=active&subject={patient_id}",
                        headers=pharmacist).get_json()
    assert [e["resource"]["id"] for e in active["entry"]
            if e["search"]["mode"] == "match"] == [kept["id"]]

    assert client.post(f"/fhir/ImagingStudy/{study_id}/$pharmacy-review",
                       headers={**pharmacist, **FHIR_JSON},
                       json=parameters(note="Checked.")).status_code == 200
    assert put(client, pharmacist, {**kept, "status": "cancelled"}).status_code == 409
    admin = as_role("admin")
    assert client.post(f"/fhir/ImagingStudy/{study_id}/$approve",
                       headers=admin).status_code == 201
    with app.app_context():
        report_id = db.session.get(Scan, study_id).report.id
    text = pdf_text(client, admin, report_id)
    assert "Paracetamol" in text and "Doxycycline" not in text


def test_an_adult_overdose_warns_and_the_review_needs_an_override_printed_in_the_pdf(
        app, client, as_role, verified):
    study_id, patient_id = verified
    pharmacist = as_role("pharmacist")
    created = create(client, pharmacist, structured(patient_id, study_id, "Amoxicilin", 5000,
                                                    "mg", 3))
    [issue] = created["contained"]
    assert created["detectedIssue"] == [{"reference": "#dose-1"}]
    assert issue["resourceType"] == "DetectedIssue" and issue["severity"] == "high"
    assert "15,000 mg a day exceeds the adult maximum of 4,000 mg" in issue["detail"]

    review = f"/fhir/ImagingStudy/{study_id}/$pharmacy-review"
    refused = client.post(review, headers={**pharmacist, **FHIR_JSON},
                          json=parameters(note="Checked."))
    assert refused.status_code == 409
    diagnostics = parse_fhir(refused.data, "OperationOutcome").issue[0].diagnostics
    assert "amoxicillin" in diagnostics and "4,000 mg" in diagnostics
    assert "override-reason" in diagnostics

    done = client.post(review, headers={**pharmacist, **FHIR_JSON}, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "note", "valueString": "Checked."},
            {"name": "override-reason",
             "valueString": "Endocarditis protocol agreed with Dr Osei"}]})
    assert done.status_code == 200, done.data
    mitigated = client.get(f"/fhir/MedicationRequest/{created['id']}",
                           headers=pharmacist).get_json()
    assert "Endocarditis protocol" in mitigated["contained"][0]["mitigation"][0]["action"][
        "text"]
    admin = as_role("admin")
    assert client.post(f"/fhir/ImagingStudy/{study_id}/$approve",
                       headers=admin).status_code == 201
    with app.app_context():
        report_id = db.session.query(Report).filter_by(scan_id=study_id).one().id
    text = pdf_text(client, admin, report_id)
    assert "Dose warning:" in text and "exceeds the adult maximum" in text
    assert "Pharmacist's override: Endocarditis protocol agreed with Dr Osei" in text


def test_correcting_the_dose_clears_the_warning(client, as_role, verified):
    study_id, patient_id = verified
    pharmacist = as_role("pharmacist")
    created = create(client, pharmacist, structured(patient_id, study_id, "Amoxicilin", 5000,
                                                    "mg", 3))
    fixed = {**created, "dosageInstruction": structured(
        patient_id, study_id, "Amoxicillin", 500, "mg", 3)["dosageInstruction"]}
    fixed.pop("contained")
    fixed.pop("detectedIssue")
    response = put(client, pharmacist, fixed, version="1")
    assert "detectedIssue" not in response.get_json()
    assert client.post(f"/fhir/ImagingStudy/{study_id}/$pharmacy-review",
                       headers={**pharmacist, **FHIR_JSON},
                       json=parameters(note="Checked.")).status_code == 200


def test_a_childs_dose_is_checked_against_the_age_band_and_grams_count(app, client, as_role):
    with app.app_context():
        child = make_user("patient", birth_date=date.today() - timedelta(days=5 * 366))[0]
        study_id, _ = make_scan("DOCTOR_VERIFIED", patient=child)
        patient_id = child.patient_id
    pharmacist = as_role("pharmacist")
    adult_dose = create(client, pharmacist, structured(patient_id, study_id, "Paracetamol",
                                                       1, "g", 4))
    assert "maximum for a child aged 5 years of 1,000 mg a day" in \
        adult_dose["contained"][0]["detail"]
    child_dose = create(client, pharmacist, structured(patient_id, study_id, "Paracetamol",
                                                       240, "mg", 4))
    assert "contained" not in child_dose


def test_metadata_lists_update_on_medication_request_and_the_amendment_operations(client):
    statement = client.get("/fhir/metadata").get_json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"code": "update"} in resources["MedicationRequest"]["interaction"]
    assert {"code": "update"} not in resources["Patient"]["interaction"]
    operations = {o["name"] for o in resources["DiagnosticReport"]["operation"]}
    assert {"amend", "approve-amendment"} <= operations
