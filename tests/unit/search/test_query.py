"""Query building (csss_fhir/search/query.py): the result-parameter table, and the FHIR
search semantics through the REST API."""

from __future__ import annotations

import pytest

from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.search import MAX_COUNT, SearchRequest
from csss_fhir.search.query import RESULT_PARAMETERS, plan_search
from tests.factories import parse_fhir


def new_patient(client, headers, **fields):
    body = {"resourceType": "Patient", "name": [{"family": fields.get("family", "Doe"),
                                                 "given": [fields.get("given", "Jane")]}],
            "birthDate": fields.get("birth", "1980-05-17"),
            "identifier": [{"system": "urn:test:mrn", "value": fields.get("mrn", "M1")}]}
    response = client.post("/fhir/Patient", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def total(client, headers, query: str) -> int:
    response = client.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse_fhir(response.data, "Bundle").total


def test_string_token_and_date_semantics(client, as_role):
    admin = as_role("admin")
    new_patient(client, admin, family="Smithson", given="Anna Maria", mrn="A1", birth="1970-01-02")
    new_patient(client, admin, family="Smith", given="Bob", mrn="B2", birth="1990-12-31")
    assert total(client, admin, "Patient?name=smith") == 2  # starts with, any case
    assert total(client, admin, "Patient?name:exact=Smith") == 1
    assert total(client, admin, "Patient?name:exact=smith") == 0  # exact is case-sensitive
    assert total(client, admin, "Patient?name:contains=ITHS") == 1
    assert total(client, admin, "Patient?given=maria") == 1  # any word of the name
    assert total(client, admin, "Patient?identifier=urn:test:mrn|A1") == 1
    assert total(client, admin, "Patient?identifier=urn:other|A1") == 0
    assert total(client, admin, "Patient?identifier=A1,B2") == 2  # comma is OR
    assert total(client, admin, "Patient?birthdate=1970") == 1
    assert total(client, admin, "Patient?birthdate=ge1980-01-01") == 1
    assert total(client, admin, "Patient?birthdate=lt1990-12") == 1
    assert total(client, admin, "Patient?birthdate=eb1990-12-31&birthdate=sa1969") == 1
    assert total(client, admin, "Patient?_summary=count") == 2
    counted = parse_fhir(client.get("/fhir/Patient?_summary=count", headers=admin).data)
    assert not counted.entry and counted.total == 2
    bad_date = client.get("/fhir/Patient?birthdate=yesterday", headers=admin)
    assert bad_date.status_code == 400


def test_unsupported_modifier_is_reported_or_refused_when_strict(client, as_role):
    admin = as_role("admin")
    lenient = parse_fhir(client.get("/fhir/Patient?birthdate:exact=1970", headers=admin).data)
    assert any(e.search.mode == "outcome" for e in lenient.entry or [])
    strict = client.get("/fhir/Patient?birthdate:exact=1970",
                        headers={**admin, "Prefer": "handling=strict"})
    assert strict.status_code == 400


def plan(*params: tuple[str, str], resource_type: str = "Patient", strict: bool = False):
    return plan_search(SearchRequest(resource_type, list(params), compartment=None,
                                     strict=strict))


def test_result_parameters_are_dispatched_by_the_table():
    assert set(RESULT_PARAMETERS) == {"_count", "_offset", "_cursor", "_sort", "_summary",
                                      "_elements", "_total", "_format", "_include",
                                      "_revinclude"}
    read = plan(("_count", "500"), ("_offset", "40"), ("_sort", "_lastUpdated"),
                ("_summary", "count"), ("_format", "json"),
                ("_revinclude", "ImagingStudy:patient"))
    assert (read.count, read.offset, read.sort_desc, read.summary_count) == \
        (MAX_COUNT, 40, False, True)
    assert read.includes == [("_revinclude", "ImagingStudy:patient")]
    assert read.ignored == [] and read.filters == []


def test_include_takes_a_modifier_other_result_parameters_do_not():
    assert plan(("_include:iterate", "ImagingStudy:patient"),
                resource_type="ImagingStudy").includes == [("_include",
                                                           "ImagingStudy:patient")]
    assert plan(("_count:x", "5")).ignored == ["_count:x"]


def test_declared_parameters_become_filters_and_the_rest_is_reported():
    read = plan(("name:exact", "Smith"), ("shoe-size", "42"), ("birthdate:exact", "1970"),
                ("name", ""), ("_sort", "shoe-size"), ("_summary", "short"),
                ("_include", "Patient:organization"))
    assert [(value, modifier) for _, value, modifier in read.filters] == [("Smith", "exact")]
    assert read.ignored == ["shoe-size", "birthdate:exact", "name", "_sort=shoe-size",
                            "_summary=short", "_include=Patient:organization"]


@pytest.mark.parametrize("param, message", [
    (("shoe-size", "42"), "unknown search parameter 'shoe-size' for Patient; supported: "),
    (("birthdate:exact", "1970"), "the modifier :exact is not supported on birthdate"),
    (("_sort", "name,-shoe"), "_sort supports _lastUpdated and the search parameters of "
                              "Patient"),
    (("_include", "Patient:organization"), "supported: none"),
])
def test_strict_refuses_what_lenient_reports(param, message):
    with pytest.raises(InvalidInputError, match=message):
        plan(param, strict=True)


@pytest.mark.parametrize("value", ["many", "-1"])
def test_a_bad_count_is_refused_even_when_lenient(value):
    with pytest.raises(InvalidInputError, match="_count must be"):
        plan(("_count", value))


def test_an_unsearchable_type_is_not_found():
    with pytest.raises(ResourceNotFoundError):
        plan(resource_type="Binary")


@pytest.mark.parametrize("sort", ["-_lastUpdated", "_lastUpdated"])
def test_cursor_pages_neither_repeat_nor_skip_while_rows_are_added(client, as_role, sort):
    admin = as_role("admin")
    before = {new_patient(client, admin, family=f"Walk{n}", mrn=f"W{n}")["id"]
              for n in range(7)}
    url = f"/fhir/Patient?name=walk&_count=3&_sort={sort}"
    seen: list[str] = []
    added: set[str] = set()
    pages = []
    while url:
        bundle = client.get(url, headers=admin).get_json()
        pages.append(bundle)
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        # A new matching patient arrives between every two pages.
        added.add(new_patient(client, admin, family=f"Walk{len(seen)}x",
                              mrn=f"WX{len(seen)}")["id"])
        nexts = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = "/fhir/" + nexts[0].split("/fhir/", 1)[1] if nexts else None
    assert len(seen) == len(set(seen))  # no entry twice
    assert before <= set(seen)  # none of the rows there at the start is skipped
    if sort == "_lastUpdated":  # oldest first: the rows added later come at the end
        assert set(seen) - before <= added
    # previous walks back over the same pages.
    last = pages[-1]
    back = [link["url"] for link in last["link"] if link["relation"] == "previous"]
    previous = client.get("/fhir/" + back[0].split("/fhir/", 1)[1], headers=admin).get_json()
    assert [e["resource"]["id"] for e in previous["entry"]] == \
        [e["resource"]["id"] for e in pages[-2]["entry"]]


def test_a_cursor_the_server_did_not_give_is_a_400(client, as_role):
    response = client.get("/fhir/Patient?_cursor=bm9wZQ", headers=as_role("admin"))
    assert response.status_code == 400
    assert "_cursor" in parse_fhir(response.data, "OperationOutcome").issue[0].diagnostics


def test_summary_elements_and_total_shape_what_is_returned(client, as_role):
    from adapters.fhir.validation import model_class

    admin = as_role("admin")
    created = new_patient(client, admin, family="Shape", mrn="S1")
    summary_names = {f.alias or n for n, f in model_class("Patient").model_fields.items()
                     if (f.json_schema_extra or {}).get("summary_element_property")}

    def first(query: str) -> dict:
        bundle = client.get(f"/fhir/Patient?_id={created['id']}&{query}", headers=admin)
        assert bundle.status_code == 200, bundle.get_data(as_text=True)
        resource = bundle.get_json()["entry"][0]["resource"]
        parse_fhir(resource, "Patient")
        return resource

    full = first("_summary=false")
    assert "text" in full and "SUBSETTED" not in str(full["meta"])
    brief = first("_summary=true")
    assert set(brief) == (set(full) & summary_names) | {"resourceType"}
    assert brief["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert set(first("_summary=text")) == {"resourceType", "id", "meta", "text"}
    assert set(first("_summary=data")) == set(full) - {"text"}
    assert set(first("_elements=name,birthDate")) == {"resourceType", "id", "meta", "name",
                                                      "birthDate"}
    read = client.get(f"/fhir/Patient/{created['id']}?_elements=gender", headers=admin)
    assert set(read.get_json()) == {"resourceType", "id", "meta"}  # no gender was sent
    no_total = client.get("/fhir/Patient?_total=none", headers=admin).get_json()
    assert "total" not in no_total and no_total["entry"]
    assert client.get("/fhir/Patient?_total=accurate", headers=admin).get_json()["total"] >= 1
