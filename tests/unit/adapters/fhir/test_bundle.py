from __future__ import annotations

from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from adapters.fhir.bundle import SearchEntry, searchset
from tests.factories import emitted


def bundle(entries: list[SearchEntry], total: int) -> dict:
    return emitted(searchset(entries=entries, total=total, base_url="https://csss.example/fhir/",
                             links={"self": "https://csss.example/fhir/Patient?_count=1",
                                    "next": "https://csss.example/fhir/Patient?_offset=1"}),
                   "Bundle")


def test_a_searchset_has_total_links_and_full_urls_by_search_mode():
    patient = Patient.model_validate({"resourceType": "Patient", "id": "pat-1"})
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [
        {"severity": "warning", "code": "processing", "diagnostics": "unknown _elements"}]})
    data = bundle([SearchEntry(patient), SearchEntry(outcome, mode="outcome")], total=7)
    assert data["type"] == "searchset" and data["total"] == 7
    assert data["link"] == [
        {"relation": "self", "url": "https://csss.example/fhir/Patient?_count=1"},
        {"relation": "next", "url": "https://csss.example/fhir/Patient?_offset=1"}]
    match, warning = data["entry"]
    assert match["fullUrl"] == "https://csss.example/fhir/Patient/pat-1"
    assert match["search"] == {"mode": "match"} and match["resource"]["id"] == "pat-1"
    assert warning["fullUrl"].startswith("urn:uuid:")
    assert warning["search"] == {"mode": "outcome"}


def test_an_empty_searchset_has_no_entry_element():
    data = bundle([], total=0)
    assert data["total"] == 0 and "entry" not in data


def test_bundle_output_matches_the_hl7_schema(hl7_schema):
    patient = Patient.model_validate({"resourceType": "Patient", "id": "pat-1"})
    hl7_schema(bundle([SearchEntry(patient, mode="include")], total=1))
