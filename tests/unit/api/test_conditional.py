"""Conditional requests and negotiation (issue 16 item 7): If-None-Exist, If-None-Match,
If-Modified-Since, Prefer: return=, Accept with fhirVersion, _format, _history paging."""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

import pytest

from tests.factories import parse_fhir


def patient(mrn: str, family: str = "Cond") -> dict:
    return {"resourceType": "Patient", "name": [{"family": family}],
            "identifier": [{"system": "urn:test:mrn", "value": mrn}]}


def test_conditional_create_returns_the_one_match_or_refuses_several(client, as_role):
    admin = as_role("admin")
    first = client.post("/fhir/Patient", json=patient("C-1"), headers=admin)
    assert first.status_code == 201
    again = client.post("/fhir/Patient", json=patient("C-1"), headers={
        **admin, "If-None-Exist": "identifier=urn:test:mrn|C-1"})
    assert again.status_code == 200
    assert parse_fhir(again.data, "Patient").id == first.get_json()["id"]
    fresh = client.post("/fhir/Patient", json=patient("C-2"), headers={
        **admin, "If-None-Exist": "identifier=urn:test:mrn|C-2"})
    assert fresh.status_code == 201 and fresh.get_json()["id"] != first.get_json()["id"]
    several = client.post("/fhir/Patient", json=patient("C-3"), headers={
        **admin, "If-None-Exist": "family=Cond"})
    assert several.status_code == 412
    parse_fhir(several.data, "OperationOutcome")
    unknown = client.post("/fhir/Patient", json=patient("C-4"), headers={
        **admin, "If-None-Exist": "colour=blue"})
    assert unknown.status_code == 400


def test_reads_answer_304_when_the_client_has_the_version(client, as_role):
    admin = as_role("admin")
    created = client.post("/fhir/Patient", json=patient("N-1"), headers=admin)
    url = f"/fhir/Patient/{created.get_json()['id']}"
    read = client.get(url, headers=admin)
    etag, modified = read.headers["ETag"], read.headers["Last-Modified"]
    for path in (url, f"{url}/_history/1"):
        assert client.get(path, headers={**admin, "If-None-Match": etag}).status_code == 304
        assert client.get(path, headers={**admin, "If-None-Match": 'W/"2"'}).status_code == 200
        assert client.get(path, headers={**admin, "If-Modified-Since": modified}
                          ).status_code == 304
        earlier = format_datetime(parsedate_to_datetime(modified).replace(year=2000),
                                  usegmt=True)
        assert client.get(path, headers={**admin, "If-Modified-Since": earlier}
                          ).status_code == 200


@pytest.mark.parametrize("prefer", ["return=minimal", "return=representation",
                                    "return=OperationOutcome", None])
def test_prefer_return_shapes_what_a_create_answers(client, as_role, prefer):
    headers = {**as_role("admin"), **({"Prefer": prefer} if prefer else {})}
    response = client.post("/fhir/Patient", json=patient("P-1"), headers=headers)
    assert response.status_code == 201 and "/fhir/Patient/" in response.headers["Location"]
    if prefer == "return=minimal":
        assert response.data == b""
    elif prefer == "return=OperationOutcome":
        outcome = parse_fhir(response.data, "OperationOutcome")
        assert outcome.issue[0].severity == "information"
    else:
        assert parse_fhir(response.data, "Patient").identifier[0].value == "P-1"


@pytest.mark.parametrize(("accept", "status"), [
    ("application/fhir+json; fhirVersion=4.0", 200),
    ("application/fhir+json;fhirVersion=4.0;q=0.9", 200),
    ("application/fhir+json; fhirVersion=3.0", 406),
    ("application/fhir+json; fhirVersion=3.0, application/json", 200),
    ("application/fhir+xml", 406),
    ("*/*", 200),
])
def test_accept_names_the_fhir_version(client, as_role, accept, status):
    response = client.get("/fhir/Patient", headers={**as_role("admin"), "Accept": accept})
    assert response.status_code == status, response.get_data(as_text=True)


def test_format_overrides_accept(client, as_role):
    admin = as_role("admin")
    xml = {**admin, "Accept": "application/fhir+xml"}
    assert client.get("/fhir/Patient?_format=json", headers=xml).status_code == 200
    assert client.get(f"/fhir/Patient?_format={quote('application/fhir+json')}",
                      headers=xml).status_code == 200
    assert client.get("/fhir/Patient?_format=xml", headers=admin).status_code == 406


def test_history_honours_since_and_count(app, client, as_role):
    from tests.factories import make_scan

    with app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = as_role("doctor")
    task_id = client.get(f"/fhir/Task?focus=ImagingStudy/{scan_id}",
                         headers=doctor).get_json()["entry"][0]["resource"]["id"]
    history = client.get(f"/fhir/Task/{task_id}/_history", headers=doctor).get_json()
    stamps = [e["resource"]["meta"]["lastUpdated"] for e in history["entry"]]
    assert len(stamps) == 3  # upload, classify, verify; newest first
    since = client.get(f"/fhir/Task/{task_id}/_history?_since={quote(stamps[1])}",
                       headers=doctor).get_json()
    assert [e["resource"]["meta"]["lastUpdated"] for e in since["entry"]] == stamps[:2]
    assert since["total"] == 2
    counted = client.get(f"/fhir/Task/{task_id}/_history?_count=1", headers=doctor).get_json()
    assert len(counted["entry"]) == 1 and counted["total"] == 3
    parse_fhir(counted, "Bundle")


def test_the_capability_statement_declares_conditional_create_and_read(client):
    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    by_type = {r.type: r for r in statement.rest[0].resource}
    assert by_type["Patient"].conditionalCreate is True
    assert by_type["MedicationRequest"].conditionalCreate is True
    assert by_type["Observation"].conditionalRead == "full-support"
