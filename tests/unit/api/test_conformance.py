"""OperationDefinition and SearchParameter (api/conformance.py) and a truthful
CapabilityStatement (issue 16 items 5 and 9): every definition the statement names is served
or is R4's, and says what the server does."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pytest

from adapters.fhir.operation_definition import OPERATIONS
from csss_fhir import create_app, search
from tests.api_routes import operation_routes
from tests.factories import make_scan, parse_fhir

R4_SEARCH_PARAMETER = "http://hl7.org/fhir/SearchParameter/"


def statement(client) -> dict:
    response = client.get("/fhir/metadata")
    parse_fhir(response.data, "CapabilityStatement")
    return response.get_json()


def served(client, url: str):
    """GET a canonical URL of this server (the test app's BASE_URL is 127.0.0.1:5000)."""
    parts = urlsplit(url)
    return client.get(parts.path + (f"?{parts.query}" if parts.query else ""))


def test_every_operation_route_has_a_definition_table(app):
    assert {name for _, name in operation_routes(app)} <= set(OPERATIONS)
    assert {"upload", "classify", "verify", "pharmacy-review", "approve", "amend",
            "approve-amendment", "return-to-patient", "send-back", "prioritize",
            "validate"} <= set(OPERATIONS)


def test_each_operation_named_by_the_statement_is_served_and_valid(client):
    named = [(resource["type"], operation)
             for resource in statement(client)["rest"][0]["resource"]
             for operation in resource.get("operation", [])]
    assert len(named) == 14  # ImagingStudy 8, DiagnosticReport 2, Subscription 2, $validate 2
    for resource_type, operation in named:
        response = served(client, operation["definition"])
        assert response.status_code == 200, (operation, response.get_data(as_text=True))
        definition = parse_fhir(response.data, "OperationDefinition")
        assert definition.url == operation["definition"]
        assert definition.code == operation["name"]
        assert definition.resource == [resource_type]
        assert definition.text.status == "generated"
        outputs = [p for p in definition.parameter if p.use == "out"]
        assert [p.name for p in outputs] == ["return"]


def test_levels_and_inputs_follow_the_routes(client):
    upload = parse_fhir(client.get("/fhir/OperationDefinition/ImagingStudy-upload").data)
    assert (upload.type, upload.instance, upload.system) == (True, False, False)
    inputs = {p.name: (p.min, p.max, p.type) for p in upload.parameter if p.use == "in"}
    assert inputs == {"file": (1, "1", "Attachment"), "patient": (0, "1", "Reference"),
                      "modality": (0, "1", "string"), "bodySite": (0, "1", "string"),
                      "description": (0, "1", "string")}
    verify = parse_fhir(client.get("/fhir/OperationDefinition/ImagingStudy-verify").data)
    assert (verify.type, verify.instance) == (False, True)
    assert next(p for p in verify.parameter if p.name == "note").min == 1
    validate = parse_fhir(client.get("/fhir/OperationDefinition/Patient-validate").data)
    assert validate.base == "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    assert validate.affectsState is False


def test_unknown_definitions_are_404(client):
    for path in ("/fhir/OperationDefinition/ImagingStudy-launch",
                 "/fhir/SearchParameter/Patient-shoe-size"):
        response = client.get(path)
        assert response.status_code == 404
        assert "is not served here" in parse_fhir(
            response.data, "OperationOutcome").issue[0].diagnostics


def test_definitions_are_searched_by_url_and_name(client):
    url = "http://127.0.0.1:5000/fhir/OperationDefinition/DiagnosticReport-amend"
    by_url = parse_fhir(client.get(f"/fhir/OperationDefinition?url={url}").data, "Bundle")
    assert [e.resource.id for e in by_url.entry] == ["DiagnosticReport-amend"]
    by_name = parse_fhir(client.get("/fhir/OperationDefinition?name=imagingstudy").data)
    assert by_name.total == 8
    everything = parse_fhir(client.get("/fhir/SearchParameter").data, "Bundle")
    assert everything.total == len(search.OWN_PARAMETERS)
    refused = client.get("/fhir/SearchParameter?code=patient")
    assert refused.status_code == 400


def test_every_search_parameter_has_a_definition_that_says_what_it_does(client):
    own_served = 0
    for resource in statement(client)["rest"][0]["resource"]:
        for param in resource.get("searchParam", []):
            definition = param["definition"]
            if definition.startswith(R4_SEARCH_PARAMETER):
                assert (resource["type"], param["name"]) not in search.OWN_PARAMETERS
                continue
            response = served(client, definition)
            assert response.status_code == 200, definition
            served_param = parse_fhir(response.data, "SearchParameter")
            assert served_param.url == definition
            assert (served_param.code, served_param.base, served_param.type) == (
                param["name"], [resource["type"]], param["type"])
            own_served += 1
    assert own_served == len(search.OWN_PARAMETERS)
    assert statement(client)["rest"][0]["searchParam"][0]["name"] == "_count"


def test_provenance_patient_means_what_r4_says_and_scan_patient_finds_the_steps(
        app, client, as_role):
    with app.app_context():
        _, patient = make_scan("AI_ANALYZED")
        patient_id = patient.patient_id
    headers = as_role("doctor")
    standard = parse_fhir(client.get(f"/fhir/Provenance?patient={patient_id}",
                                     headers=headers).data, "Bundle")
    assert standard.total == 0  # no step targets the Patient resource itself
    ours = parse_fhir(client.get(f"/fhir/Provenance?scan-patient=Patient/{patient_id}",
                                 headers=headers).data, "Bundle")
    assert ours.total == 2  # upload, classify
    definitions = {p["name"]: p["definition"] for r in statement(client)["rest"][0]["resource"]
                   if r["type"] == "Provenance" for p in r["searchParam"]}
    assert definitions["patient"] == R4_SEARCH_PARAMETER + "Provenance-patient"
    assert definitions["scan-patient"].endswith("/fhir/SearchParameter/Provenance-scan-patient")


def test_cors_is_declared_only_when_configured_and_then_sent(settings, client):
    assert statement(client)["rest"][0]["security"]["cors"] is False
    assert "Access-Control-Allow-Origin" not in client.get(
        "/fhir/metadata", headers={"Origin": "https://ehr.example"}).headers
    app = create_app(dataclasses.replace(settings, cors_origins=("https://ehr.example",)))
    with app.test_client() as cors_client:
        assert statement(cors_client)["rest"][0]["security"]["cors"] is True
        response = cors_client.get("/fhir/metadata", headers={"Origin": "https://ehr.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://ehr.example"


@pytest.mark.parametrize("kind", ["Binary", "OperationDefinition", "SearchParameter"])
def test_the_statement_lists_the_new_interactions(client, kind):
    resource = next(r for r in statement(client)["rest"][0]["resource"] if r["type"] == kind)
    codes = {i["code"] for i in resource["interaction"]}
    assert codes == ({"read", "create"} if kind == "Binary" else {"read", "search-type"})


def test_definitions_page_with_count_and_carry_meta_like_every_resource(client):
    # fhirpy sends _count with every search; a read sends ETag and Last-Modified.
    first = parse_fhir(client.get("/fhir/OperationDefinition?_count=3").data, "Bundle")
    assert first.total > 3 and len(first.entry) == 3
    following = next(link.url for link in first.link if link.relation == "next")
    second = parse_fhir(client.get(following.removeprefix("http://127.0.0.1:5000")).data,
                        "Bundle")
    assert {e.resource.id for e in second.entry}.isdisjoint(e.resource.id for e in first.entry)
    read = client.get(f"/fhir/OperationDefinition/{first.entry[0].resource.id}")
    meta = parse_fhir(read.data, "OperationDefinition").meta
    assert read.headers["ETag"] == f'W/"{meta.versionId}"' and read.headers["Last-Modified"]


def test_definitions_search_by_id_sort_summary_and_read_conditionally(client):
    # What the CapabilityStatement declares for every searchable type, these types included.
    ids = [e.resource.id for e in parse_fhir(client.get(
        "/fhir/OperationDefinition?_sort=-_id&_count=100").data, "Bundle").entry]
    assert ids == sorted(ids, reverse=True)
    by_id = parse_fhir(client.get(f"/fhir/OperationDefinition?_id={ids[0]},{ids[1]}"
                                  "&_elements=code").data, "Bundle")
    assert {e.resource.id for e in by_id.entry} == set(ids[:2])
    assert all(e.resource.parameter is None and e.resource.code for e in by_id.entry)
    counted = parse_fhir(client.get("/fhir/SearchParameter?_summary=count").data, "Bundle")
    assert counted.total == len(search.OWN_PARAMETERS) and not counted.entry
    read = client.get(f"/fhir/OperationDefinition/{ids[0]}")
    again = client.get(f"/fhir/OperationDefinition/{ids[0]}",
                       headers={"If-None-Match": read.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("kind", ["OperationDefinition", "SearchParameter"])
def test_definitions_answer_missing_as_every_one_has_each_element(client, kind):
    every = client.get(f"/fhir/{kind}?_summary=count").get_json()["total"]
    for name in ("_id", "url", "name"):
        assert client.get(f"/fhir/{kind}?{name}:missing=true").get_json()["total"] == 0
        assert client.get(f"/fhir/{kind}?{name}:missing=false").get_json()["total"] == every
    refused = client.get(f"/fhir/{kind}?url:missing=maybe")
    assert refused.status_code == 400 and "url:missing" in refused.get_data(as_text=True)
