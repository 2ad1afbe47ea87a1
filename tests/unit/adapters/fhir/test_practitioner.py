from __future__ import annotations

import pytest

from adapters.fhir.practitioner import (
    ROLE_SYSTEM,
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)
from tests.factories import emitted, row


def staff(role: str = "doctor", **fields):
    return row(**{"id": "u-1", "active": True, "name": "Dr. Kofi Mensah",
                  "email": "kofi@test.local", "role": role, **fields})


def test_a_practitioner_has_name_work_email_and_active_flag():
    data = emitted(to_fhir_practitioner(staff(active=False)), "Practitioner")
    assert data["id"] == "u-1" and data["active"] is False
    assert data["name"] == [{"text": "Dr. Kofi Mensah"}]
    assert data["telecom"] == [{"system": "email", "value": "kofi@test.local", "use": "work"}]


@pytest.mark.parametrize(("role", "code"), [("doctor", "doctor"), ("pharmacist", "pharmacist"),
                                            ("admin", "ict")])
def test_a_practitioner_role_codes_the_role_and_references_the_practitioner(role, code):
    data = emitted(to_fhir_practitioner_role(staff(role)), "PractitionerRole")
    assert data["practitioner"] == {"reference": "Practitioner/u-1", "display": "Dr. Kofi Mensah"}
    [concept] = data["code"]
    assert concept["coding"][0]["system"] == ROLE_SYSTEM
    assert concept["coding"][0]["code"] == code and concept["text"] == role


def test_practitioner_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_practitioner(staff()), "Practitioner"))
    hl7_schema(emitted(to_fhir_practitioner_role(staff("admin")), "PractitionerRole"))
