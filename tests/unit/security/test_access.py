"""Who reads what: patients see no staff records (issue 15 item 5)."""

from __future__ import annotations

import pytest

from tests.factories import make_login


@pytest.mark.parametrize("path", ["/fhir/Practitioner", "/fhir/PractitionerRole",
                                  "/fhir/Practitioner?email=doctor",
                                  "/fhir/Practitioner/{id}", "/fhir/Practitioner/{id}/_history",
                                  "/fhir/Practitioner/{id}/_history/1"])
def test_a_patient_reads_no_staff_contact_details(app, client, as_role, path):
    doctor = make_login(app, "doctor")
    headers = as_role("patient")
    response = client.get(path.format(id=doctor.id), headers=headers)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert doctor.email not in response.get_data(as_text=True)


def test_staff_still_read_practitioners(app, client, as_role):
    doctor = make_login(app, "doctor")
    response = client.get("/fhir/Practitioner", headers=as_role("pharmacist"))
    assert response.status_code == 200 and doctor.email in response.get_data(as_text=True)
