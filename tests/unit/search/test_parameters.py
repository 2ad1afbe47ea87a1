"""The declared search parameters (csss_fhir/search/parameters.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import Patient
from csss_fhir.resources import SERVED
from csss_fhir.search import PARAMETERS, parameter_types
from csss_fhir.search.parameters import Param

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
