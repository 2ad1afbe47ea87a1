"""Each role x each workflow endpoint, in the state the step starts from: allowed or 403."""

from __future__ import annotations

import io

import pytest

from tests.factories import (
    auth_headers,
    make_scan,
    make_user,
    medication_request,
    parameters,
    parse_fhir,
    xray_png,
)

ROLES = ("patient", "doctor", "pharmacist", "admin")
# step -> (state it starts from, roles allowed, success status)
STEPS = {
    "upload": (None, {"patient", "admin"}, 201),
    "classify": ("PENDING_AI", {"doctor"}, 201),
    "verify": ("AI_ANALYZED", {"doctor"}, 201),
    "prescribe": ("DOCTOR_VERIFIED", {"pharmacist"}, 201),
    "pharmacy-review": ("DOCTOR_VERIFIED", {"pharmacist"}, 200),
    "approve": ("PHARMACIST_COMPLETED", {"admin"}, 201),
}


def call(client, headers, step: str, study_id: str | None, patient_id: str):
    if step == "upload":
        return client.post("/fhir/ImagingStudy/$upload", headers=headers,
                           data={"file": (io.BytesIO(xray_png()), "x.png"),
                                 "patient": patient_id},
                           content_type="multipart/form-data")
    if step == "prescribe":
        return client.post("/fhir/MedicationRequest", headers=headers,
                           json=medication_request(patient_id, study_id))
    body = {
        "classify": None,
        "verify": parameters(note="Looks as the AI says.", agree=False, finding="Normal"),
        "pharmacy-review": parameters(note="Checked."),
        "approve": None,
    }[step]
    return client.post(f"/fhir/ImagingStudy/{study_id}/${step}", headers=headers, json=body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("step", list(STEPS))
def test_role_may_take_step_only_if_the_rule_says_so(app, client, role, step):
    state, allowed, success = STEPS[step]
    with app.app_context():
        caller, password = make_user(role)
        email = caller.email
        # A patient acts on their own scans; staff on any patient's.
        patient = caller if role == "patient" else make_user("patient")[0]
        study_id = make_scan(state, patient=patient)[0] if state else None
        patient_id = patient.patient_id
    headers = auth_headers(client, app, email, password, role)
    response = call(client, headers, step, study_id, patient_id)
    expected = success if role in allowed else 403
    assert response.status_code == expected, response.get_data(as_text=True)
    parse_fhir(response.data)
