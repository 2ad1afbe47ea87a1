"""The declared search parameters (csss_fhir/search/parameters.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import AuditRecord, Patient
from csss_fhir.resources import SERVED
from csss_fhir.search import PARAMETERS, parameter_types
from csss_fhir.search.parameters import Param
from tests.factories import make_scan, parse_fhir

FHIR_TYPES = {"token", "date", "string", "reference"}


def sql(clause) -> str:
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_every_parameter_is_a_typed_param_of_a_served_type():
    assert set(PARAMETERS) <= set(SERVED)
    for resource_type, params in PARAMETERS.items():
        assert {"_id", "_lastUpdated"} <= set(params), resource_type
        for name, parameter in params.items():
            assert isinstance(parameter, Param) and parameter.type in FHIR_TYPES, name


def test_patient_linked_types_search_by_patient_and_subject():
    for resource_type, params in PARAMETERS.items():
        linked = SERVED[resource_type].patient_column is not None
        assert linked == ("patient" in params) == ("subject" in params), resource_type


def test_parameter_types_is_what_the_capability_statement_lists():
    types = parameter_types()
    assert types["Patient"]["birthdate"] == "date"
    assert types["Patient"]["name"] == "string"
    assert types["Task"]["focus"] == "reference"
    assert list(types["Patient"]) == sorted(types["Patient"])


def test_comma_is_or_and_not_negates_a_token():
    email = PARAMETERS["Patient"]["email"]
    assert sql(email.where(Patient, "A1,B2")) == \
        "lower(patient.email) = 'a1' OR lower(patient.email) = 'b2'"
    # NULL (no e-mail) counts as "not A1": coalesce keeps the patients without one.
    assert sql(email.where(Patient, "A1,B2", "not")) == \
        "coalesce(lower(patient.email) = 'a1' OR lower(patient.email) = 'b2', 0) = 0"


def test_modifiers_are_declared_per_type():
    params = PARAMETERS["Patient"]
    assert params["identifier"].supports("not")
    assert params["name"].supports("exact") and params["name"].supports("contains")
    assert not params["birthdate"].supports("exact")
    assert PARAMETERS["Task"]["focus"].supports("ImagingStudy")


def test_a_value_with_no_alternative_is_refused():
    with pytest.raises(InvalidInputError, match="holds no value"):
        PARAMETERS["Patient"]["identifier"].where(Patient, ",")


# --- `:missing`, per type of parameter ---------------------------------------------------

def create_patient(client, headers, **elements) -> str:
    response = client.post("/fhir/Patient", headers=headers,
                           json={"resourceType": "Patient", **elements})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def matches(client, headers, query: str) -> set[str]:
    response = client.get(f"/fhir/{query}&_count=100", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_fhir(response.data, "Bundle")
    assert all(e.search.mode == "match" for e in bundle.entry or []), "reported as ignored"
    return {e.resource.id for e in bundle.entry or []}


@pytest.fixture
def full_and_bare(client, as_role):
    """(headers, the id of a Patient with every searched element, one with only the
    required name, a family name alone)."""
    admin = as_role("admin")
    full = create_patient(client, admin, name=[{"family": "Whole", "given": ["Ada"]}],
                          birthDate="1970-01-02",
                          identifier=[{"system": "urn:test:mrn", "value": "W1"}],
                          telecom=[{"system": "email", "value": "ada@example.org"}])
    bare = create_patient(client, admin, name=[{"family": "Bare"}])
    return admin, full, bare


def test_missing_string_splits_patients_by_the_name_part(client, full_and_bare):
    admin, full, bare = full_and_bare
    assert matches(client, admin, "Patient?given:missing=true") == {bare}
    assert matches(client, admin, "Patient?given:missing=false") == {full}
    for name in ("name", "family"):  # a name is required, and both have a family name
        assert matches(client, admin, f"Patient?{name}:missing=true") == set()
        assert matches(client, admin, f"Patient?{name}:missing=false") == {full, bare}


@pytest.mark.parametrize("name", ["identifier", "email"])
def test_missing_token_splits_patients_by_the_element(client, full_and_bare, name):
    admin, full, bare = full_and_bare
    assert matches(client, admin, f"Patient?{name}:missing=true") == {bare}
    assert matches(client, admin, f"Patient?{name}:missing=false") == {full}


def test_missing_date_splits_patients_by_birth_date(client, full_and_bare):
    admin, full, bare = full_and_bare
    assert matches(client, admin, "Patient?birthdate:missing=true") == {bare}
    assert matches(client, admin, "Patient?birthdate:missing=false") == {full}
    # With another filter: AND, as any repeated parameter.
    assert matches(client, admin, "Patient?birthdate:missing=false&name=Whole") == {full}
    assert matches(client, admin, "Patient?birthdate:missing=true&name=Whole") == set()


def test_an_element_always_present_is_never_missing(client, full_and_bare):
    admin, full, bare = full_and_bare
    for name in ("_id", "_lastUpdated", "active"):
        assert matches(client, admin, f"Patient?{name}:missing=true") == set()
        assert matches(client, admin, f"Patient?{name}:missing=false") == {full, bare}


def test_missing_reference_finds_by_whether_the_reference_is_held(app, client, as_role):
    with app.app_context():
        study_id, _ = make_scan("AI_ANALYZED")
    admin = as_role("admin")
    assert matches(client, admin, "ImagingStudy?patient:missing=true") == set()
    assert matches(client, admin, "ImagingStudy?patient:missing=false") == {study_id}
    assert matches(client, admin, "Task?focus:missing=false") != set()
    # An AuditEvent of a sign-in names no patient; one of a read of a scan does.
    audited = matches(client, admin, "AuditEvent?patient:missing=false")
    unaudited = matches(client, admin, "AuditEvent?patient:missing=true")
    assert audited and unaudited and not audited & unaudited


@pytest.mark.parametrize("value", ["maybe", "1", "true,false", "TRUE"])
def test_missing_takes_only_true_or_false_and_names_the_parameter(client, as_role, value):
    response = client.get(f"/fhir/Patient?birthdate:missing={value}", headers=as_role("admin"))
    assert response.status_code == 400
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert "birthdate:missing" in outcome.issue[0].diagnostics
    assert "true or false" in outcome.issue[0].diagnostics


def test_missing_is_declared_on_every_parameter(client):
    statement = client.get("/fhir/metadata").get_json()
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] in PARAMETERS:
            for param in resource["searchParam"]:
                assert ":missing" in param["documentation"], (resource["type"], param)
    own = client.get("/fhir/SearchParameter/Provenance-scan-patient").get_json()
    assert "missing" in own["modifier"]


def test_missing_compiles_to_a_definite_boolean():
    # A NULL presence (LIKE on a NULL column) must not drop the row from either side.
    agent = PARAMETERS["AuditEvent"]["agent"]
    assert sql(agent.where(AuditRecord, "true", "missing")) == \
        "coalesce(audit_event.agent_reference IS NOT NULL, 0) = 0"
    assert sql(agent.where(AuditRecord, "false", "missing")) == \
        "coalesce(audit_event.agent_reference IS NOT NULL, 0)"
