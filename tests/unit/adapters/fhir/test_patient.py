from __future__ import annotations

from datetime import date

import pytest

from adapters.fhir.common import MRN_SYSTEM
from adapters.fhir.patient import PatientData, from_fhir_patient, to_fhir_patient
from csss_fhir.errors import InvalidInputError, ResourceValidationError
from tests.factories import emitted, row


def patient_row(**fields):
    values = {"id": "pat-1", "active": True, "display_name": "Þórdís Ñúñez",
              "family_name": "Ñúñez", "given_names": "Þórdís Anna", "mrn": "MRN-42",
              "mrn_system": None, "gender": "female", "birth_date": date(1990, 5, 17),
              "email": "thordis@test.local"}
    return row(**{**values, **fields})


def test_a_patient_carries_name_mrn_gender_birth_date_and_email():
    data = emitted(to_fhir_patient(patient_row()), "Patient")
    assert data["id"] == "pat-1" and data["active"] is True
    assert data["meta"]["versionId"] == "1"
    assert data["name"] == [{"use": "official", "text": "Þórdís Ñúñez", "family": "Ñúñez",
                             "given": ["Þórdís", "Anna"]}]
    [identifier] = data["identifier"]
    assert identifier["system"] == MRN_SYSTEM and identifier["value"] == "MRN-42"
    assert identifier["type"]["coding"][0]["code"] == "MR"
    assert data["gender"] == "female" and data["birthDate"] == "1990-05-17"
    assert data["telecom"] == [{"system": "email", "value": "thordis@test.local"}]


def test_a_patient_keeps_the_hospitals_mrn_system():
    data = emitted(to_fhir_patient(patient_row(mrn_system="urn:oid:1.2.3")), "Patient")
    assert data["identifier"][0]["system"] == "urn:oid:1.2.3"


def test_absent_values_are_left_out_not_sent_empty():
    data = emitted(to_fhir_patient(patient_row(
        mrn=None, gender=None, birth_date=None, email=None, family_name="", given_names="",
        display_name="Anon")), "Patient")
    assert data["name"] == [{"use": "official", "text": "Anon"}]
    assert not {"identifier", "gender", "birthDate", "telecom"} & data.keys()


def test_patient_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_patient(patient_row()), "Patient"))


def fhir_patient(**fields):
    return {"resourceType": "Patient", "name": [{"family": "Mensah", "given": ["Kofi", "Ama"]}],
            **fields}


def test_from_fhir_patient_takes_what_we_store():
    body = fhir_patient(
        gender="male", birthDate="1980-02-29",
        telecom=[{"system": "phone", "value": "123"}, {"system": "email", "value": "k@x.org"}],
        identifier=[{"system": "urn:oid:1.2.3", "value": "A-1"}])
    parsed = from_fhir_patient(body)
    assert parsed == PatientData(family_name="Mensah", given_names="Kofi Ama",
                                 birth_date=date(1980, 2, 29), gender="male", email="k@x.org",
                                 mrn="A-1", mrn_system="urn:oid:1.2.3", resource_json=body)


def test_from_fhir_patient_uses_name_text_and_our_mrn_system_as_fallbacks():
    parsed = from_fhir_patient({"resourceType": "Patient", "name": [{"text": "Madonna"}],
                                "identifier": [{"value": "X9"}]})
    assert (parsed.family_name, parsed.given_names) == ("", "Madonna")
    assert (parsed.mrn, parsed.mrn_system) == ("X9", MRN_SYSTEM)
    assert parsed.gender is None and parsed.email is None


@pytest.mark.parametrize(("body", "element"), [
    ({"resourceType": "Patient"}, "Patient.name"),
    ({"resourceType": "Patient", "name": [{"use": "official"}]}, "Patient.name"),
    (fhir_patient(gender="woman"), "Patient.gender"),
    (fhir_patient(birthDate="17.05.1990"), "birthDate"),
    (fhir_patient(active="maybe"), "active"),
    ({"resourceType": "Practitioner", "name": [{"text": "x"}]}, "resourceType"),
])
def test_from_fhir_patient_refuses_invalid_input_naming_the_element(body, element):
    with pytest.raises(ResourceValidationError, match=element):
        from_fhir_patient(body)


def test_from_fhir_patient_refuses_a_body_that_is_no_object():
    with pytest.raises(InvalidInputError, match="JSON object"):
        from_fhir_patient(["Patient"])
