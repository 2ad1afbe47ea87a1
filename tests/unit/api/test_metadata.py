"""GET /fhir/metadata: the CapabilityStatement matches what the server really does."""

from __future__ import annotations

from tests.api_routes import operation_routes
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


def test_every_operation_route_is_in_the_statement_and_vice_versa(app, client):
    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    listed = {(r.type, o.name) for r in statement.rest[0].resource for o in r.operation or []}
    routes = operation_routes(app)
    assert ("DiagnosticReport", "amend") in routes  # the one the hand-written list forgot
    for resource_type, name in routes:
        if resource_type.startswith("<"):  # served for some types: listed on at least one
            assert name in {listed_name for _, listed_name in listed}, name
        else:
            assert (resource_type, name) in listed, (resource_type, name)
    route_names = {(t, n) for t, n in routes if not t.startswith("<")}
    generic_names = {n for t, n in routes if t.startswith("<")}
    for resource_type, name in listed:
        assert (resource_type, name) in route_names or name in generic_names, (resource_type,
                                                                               name)


def test_a_new_operation_route_appears_without_editing_the_statement(app, client):
    app.add_url_rule("/fhir/Task/<task_id>/$escalate", "escalate", lambda task_id: "",
                     methods=["POST"])
    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    task = next(r for r in statement.rest[0].resource if r.type == "Task")
    assert [(o.name, o.definition) for o in task.operation] == [
        ("escalate", "http://127.0.0.1:5000/fhir/OperationDefinition/Task-escalate")]
