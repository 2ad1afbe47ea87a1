"""The CapabilityStatement adapter (adapters/fhir/capability.py): plain data in, FHIR out."""

from __future__ import annotations

import pytest

from adapters.fhir.capability import Operation, capability_statement

BASE = "https://csss.example/fhir"


def statement(**overrides):
    arguments = {"base_url": BASE, "software_version": "1.0",
                 "searchable": {"Patient": {"_id": "token"},
                                "DiagnosticReport": {"issued": "date"}},
                 "creatable": ("Patient",)}
    return capability_statement(**{**arguments, **overrides})


def by_type(capability) -> dict:
    return {r.type: r for r in capability.rest[0].resource}


def test_operations_are_listed_on_their_type_once_in_order():
    resources = by_type(statement(operations=[
        Operation("DiagnosticReport", "amend"), Operation("Patient", "validate"),
        Operation("DiagnosticReport", "amend"), Operation("DiagnosticReport", "export")]))
    report = resources["DiagnosticReport"]
    assert [(o.name, o.definition) for o in report.operation] == [
        ("amend", f"{BASE}/OperationDefinition/DiagnosticReport-amend"),
        ("export", f"{BASE}/OperationDefinition/DiagnosticReport-export")]
    assert [(o.name, o.definition) for o in resources["Patient"].operation] == [
        ("validate", f"{BASE}/OperationDefinition/Patient-validate")]


def test_types_without_operations_list_none_and_create_follows_creatable():
    resources = by_type(statement())
    assert resources["DiagnosticReport"].operation is None
    assert "create" in {i.code for i in resources["Patient"].interaction}
    assert "create" not in {i.code for i in resources["DiagnosticReport"].interaction}


def test_an_operation_on_an_unserved_type_is_refused():
    with pytest.raises(ValueError, match="operations on Spaceship, which are not served"):
        statement(operations=[Operation("Spaceship", "launch")])


def test_cors_is_declared_as_configured_and_search_parameters_carry_definitions():
    definition = "http://hl7.org/fhir/SearchParameter/Resource-id"
    quiet = statement(definitions={"Patient": {"_id": definition}})
    assert quiet.rest[0].security.cors is False
    assert by_type(quiet)["Patient"].searchParam[0].definition == definition
    assert statement(cors=True).rest[0].security.cors is True
