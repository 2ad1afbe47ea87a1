"""GET /fhir/metadata: the CapabilityStatement matches what the server really does."""

from __future__ import annotations

from tests.factories import parse_fhir


def test_capability_statement_lists_exactly_the_search_parameters(client):
    from csss_fhir import search

    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    listed = {r.type: {p.name: p.type for p in r.searchParam or []}
              for r in statement.rest[0].resource}
    for resource_type, params in search.parameter_types().items():
        assert listed[resource_type] == params
    patient = next(r for r in statement.rest[0].resource if r.type == "Patient")
    assert [o.name for o in patient.operation] == ["validate"]
    assert "ImagingStudy:patient" in patient.searchRevInclude
