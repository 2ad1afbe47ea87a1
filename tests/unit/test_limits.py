"""Free text is bounded where it enters: a clear 400, never a slow PDF or a dead worker."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from csss_fhir import limits, workflow
from csss_fhir.errors import InvalidInputError
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.reports.sample import sample_content
from tests.factories import actor_for, make_scan, make_user, medication_request, parameters


def test_check_length_names_the_field_and_the_limit():
    assert limits.check_length("the note", "x" * 10, 10) == "x" * 10
    with pytest.raises(InvalidInputError, match="the note is 11 characters long; the limit "
                                                "is 10: shorten it"):
        limits.check_length("the note", "x" * 11, 10)


def test_a_200_kb_note_is_refused_by_verify(session):
    scan_id, _ = make_scan("AI_ANALYZED")
    doctor = actor_for(make_user("doctor")[0])
    with pytest.raises(InvalidInputError, match="limit is 4,000"):
        workflow.verify(session, doctor, scan_id, note="x" * 200_000, agree=False,
                        finding="Normal")


def test_api_answers_400_for_an_overlong_note_and_prescription_field(app, client, as_role):
    with app.app_context():
        scan_id, patient = make_scan("AI_ANALYZED")
        patient_id = patient.patient_id
    response = client.post(f"/fhir/ImagingStudy/{scan_id}/$verify", headers={
        **as_role("doctor"), "Content-Type": "application/fhir+json"},
        json=parameters(note="n" * (limits.NOTE + 1), agree=False, finding="Normal"))
    assert response.status_code == 400 and "limit is 4,000" in response.get_data(as_text=True)
    with app.app_context():
        scan_id, patient = make_scan("DOCTOR_VERIFIED")
        patient_id = patient.patient_id
    body = medication_request(patient_id, scan_id)
    body["dosageInstruction"][0]["route"]["text"] = "r" * (limits.SHORT + 1)
    response = client.post("/fhir/MedicationRequest", json=body, headers={
        **as_role("pharmacist"), "Content-Type": "application/fhir+json"})
    assert response.status_code == 400 and "route is" in response.get_data(as_text=True)


def test_an_overlong_patient_name_is_a_400(client, as_role):
    body = {"resourceType": "Patient", "name": [{"family": "F" * 201, "given": ["G"]}]}
    response = client.post("/fhir/Patient", json=body, headers={
        **as_role("doctor"), "Content-Type": "application/fhir+json"})
    assert response.status_code == 400 and "family name" in response.get_data(as_text=True)


def test_pdf_rendering_is_bounded_for_an_old_overlong_note():
    content = sample_content()
    started = time.perf_counter()
    render_pdf(replace(content, doctor_note="word " * 20_000, pharmacy_note="x" * 100_000))
    assert time.perf_counter() - started < 5
