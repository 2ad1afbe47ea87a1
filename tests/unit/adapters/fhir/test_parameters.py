from __future__ import annotations

import pytest

from adapters.fhir.parameters import OperationParameters
from csss_fhir.errors import InvalidInputError
from tests.factories import parameters


def test_a_parameters_resource_gives_its_values_by_name():
    params = OperationParameters.from_body(parameters(note="  Clear lungs. ", agree=False))
    assert params.required_string("note") == "Clear lungs."
    assert params.boolean("agree", default=True) is False
    assert params.optional_string("finding") is None
    assert params.boolean("urgent", default=True) is True


def test_a_flat_object_and_an_empty_body_are_accepted():
    assert OperationParameters.from_body({"agree": "TRUE"}).boolean("agree", default=False)
    for body in (None, {}):
        assert OperationParameters.from_body(body).optional_string("note") is None


def test_value_code_and_blank_strings():
    params = OperationParameters.from_body({"resourceType": "Parameters", "parameter": [
        {"name": "finding", "valueCode": "Normal"}, {"name": "note", "valueString": "   "}]})
    assert params.optional_string("finding") == "Normal"
    assert params.optional_string("note") is None
    with pytest.raises(InvalidInputError, match="'note' is required and must not be empty"):
        params.required_string("note")


@pytest.mark.parametrize(("body", "message"), [
    ([1, 2], "must be a FHIR Parameters resource"),
    ("note", "must be a FHIR Parameters resource"),
    ({"resourceType": "Patient"}, "resourceType 'Patient'; this operation takes Parameters"),
    ({"resourceType": "Parameters", "parameter": [{"valueString": "x"}]}, "needs a name"),
    ({"resourceType": "Parameters", "parameter": ["note"]}, "needs a name"),
    ({"resourceType": "Parameters", "parameter": [{"name": "note"}]},
     "parameter 'note' needs exactly one value"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "note", "valueString": "a", "valueCode": "b"}]},
     "parameter 'note' needs exactly one value"),
])
def test_malformed_bodies_are_refused_naming_the_problem(body, message):
    with pytest.raises(InvalidInputError, match=message):
        OperationParameters.from_body(body)


@pytest.mark.parametrize(("values", "call", "message"), [
    ({"note": 3}, lambda p: p.optional_string("note"), "'note' must be a string"),
    ({"agree": "yes"}, lambda p: p.boolean("agree", default=True), "'agree' must be true or false"),
    ({"agree": 1}, lambda p: p.boolean("agree", default=True), "'agree' must be true or false"),
])
def test_wrong_value_types_are_refused_naming_the_parameter(values, call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(OperationParameters.from_body(values))
