"""Declared search parameters against an independent expectation (issue 16 item 2).

Each test reads every resource of a type as served, computes in the test which of them a
query must find (from the served JSON, with FHIR's token and string rules written here
again, independently of csss_fhir/search), and compares with what the server finds.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest

from tests.factories import make_scan, make_user, parse_fhir


def everything(client, headers, resource_type: str) -> list[dict]:
    bundle = client.get(f"/fhir/{resource_type}?_count=100", headers=headers).get_json()
    assert bundle["total"] <= 100
    resources = [e["resource"] for e in bundle.get("entry", [])
                 if e["search"]["mode"] == "match"]
    assert all(r["resourceType"] == resource_type for r in resources)
    return resources


def found(client, headers, resource_type: str, query: str) -> set[str]:
    response = client.get(f"/fhir/{resource_type}?{query}&_count=100", headers=headers)
    assert response.status_code == 200, (query, response.get_data(as_text=True))
    bundle = parse_fhir(response.data, "Bundle")
    assert all(e.resource.get_resource_type() == resource_type for e in bundle.entry or []
               if e.search.mode == "match")
    return {e.resource.id for e in bundle.entry or [] if e.search.mode == "match"}


# --- the token rules, from the FHIR specification -----------------------------------------

def token_hit(codings: list[tuple[str | None, str]], value: str) -> bool:
    if "|" not in value:
        return any(code == value for _, code in codings)
    system, code = value.split("|", 1)
    if system == "":
        return any(s is None and c == code for s, c in codings)
    if code == "":
        return any(s == system for s, _ in codings)
    return (system, code) in codings


def codings_of(concepts) -> list[tuple[str | None, str]]:
    if isinstance(concepts, dict):
        concepts = [concepts]
    return [(c.get("system"), c["code"]) for concept in concepts or []
            for c in concept.get("coding", [])]


TOKEN_ELEMENTS = {
    ("Patient", "identifier"): lambda r: [(i.get("system"), i["value"])
                                          for i in r.get("identifier", [])],
    ("PractitionerRole", "role"): lambda r: codings_of(r.get("code")),
    ("ImagingStudy", "modality"): lambda r: [(c.get("system"), c["code"])
                                             for c in r.get("modality", [])],
    ("Task", "business-status"): lambda r: codings_of(r.get("businessStatus")),
    ("Observation", "value-concept"): lambda r: codings_of(r.get("valueCodeableConcept")),
}


def token_queries(codings: list[tuple[str | None, str]]) -> set[str]:
    """Every form of token value that the served codings suggest, plus near misses."""
    queries = {"no-such-code", "urn:no-such-system|", "|no-such-code"}
    for system, code in codings:
        queries |= {code, f"|{code}", f"urn:other|{code}"}
        if system:
            queries |= {f"{system}|{code}", f"{system}|"}
    return queries


@pytest.mark.parametrize(("resource_type", "name"), sorted(TOKEN_ELEMENTS))
def test_each_token_parameter_finds_what_its_element_holds(app, client, as_role, runner,
                                                           resource_type, name):
    with app.app_context():
        make_user("patient", mrn="CLI-7")  # as `csss users create --mrn` registers one
        make_user("patient")  # no MRN at all
        make_scan("DOCTOR_VERIFIED")
        make_scan("AI_ANALYZED")
    admin = as_role("admin")
    as_role("pharmacist")
    client.post("/fhir/Patient", headers=admin, json={
        "resourceType": "Patient", "name": [{"family": "Two"}],
        "identifier": [{"system": "urn:hospital:b", "value": "CLI-7"}]})
    reader = admin if resource_type in ("Patient", "PractitionerRole") else as_role("doctor")
    resources = everything(client, reader, resource_type)
    element = TOKEN_ELEMENTS[resource_type, name]
    every_coding = [c for r in resources for c in element(r)]
    assert every_coding, "the fixture must serve some codes"
    for query in sorted(token_queries(every_coding)):
        expected = {r["id"] for r in resources if token_hit(element(r), query)}
        assert found(client, reader, resource_type, f"{name}={quote(query)}") == expected, query
        # :not is the complement, including the resources that lack the element.
        negated = {r["id"] for r in resources} - expected
        assert found(client, reader, resource_type, f"{name}:not={quote(query)}") == negated, \
            query


# --- the string rules ------------------------------------------------------------------------

def folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if unicodedata.category(c) != "Mn").casefold()


def name_parts(resource: dict, key: str) -> list[str]:
    parts: list[str] = []
    for name in resource.get("name", []):
        if key in ("name", "family") and name.get("family"):
            parts.append(name["family"])
        if key in ("name", "given"):
            parts += name.get("given", [])
        if key == "name":
            parts += [name[k] for k in ("text",) if name.get(k)]
            parts += name.get("prefix", []) + name.get("suffix", [])
    return parts


def string_hit(parts: list[str], value: str, modifier: str | None) -> bool:
    if modifier == "exact":
        return value in parts
    if modifier == "contains":
        return any(folded(value) in folded(p) for p in parts)
    return any(word.startswith(folded(value)) or folded(p).startswith(folded(value))
               for p in parts for word in folded(p).split())


PEOPLE = [
    {"family": "Núñez", "given": ["José", "María"], "prefix": ["Dr."]},
    {"family": "Nunez", "given": ["Jose"]},
    {"family": "Straße", "given": ["Jürgen"], "text": "Prof. Jürgen Straße"},
    {"text": "Madonna"},
    {"family": "Ōkubo", "given": ["Ren"]},
]


@pytest.mark.parametrize("key", ["name", "family", "given"])
def test_each_string_parameter_folds_accents_and_case(client, as_role, key):
    admin = as_role("admin")
    for person in PEOPLE:
        created = client.post("/fhir/Patient", headers=admin,
                              json={"resourceType": "Patient", "name": [person]})
        assert created.status_code == 201
    resources = everything(client, admin, "Patient")
    queries = ["nunez", "NÚÑ", "jose", "José", "strasse", "jurg", "okubo", "Madonna",
               "Prof. Jürgen Straße", "maria", "dr", "ez"]
    for modifier in (None, "exact", "contains"):
        for value in queries:
            expected = {r["id"] for r in resources
                        if string_hit(name_parts(r, key), value, modifier)}
            param = f"{key}:{modifier}" if modifier else key
            assert found(client, admin, "Patient", f"{param}={quote(value)}") == expected, \
                (param, value)


# --- lastUpdated: what is rendered is what is searched ---------------------------------

def test_last_updated_as_rendered_finds_exactly_that_resource(client, as_role):
    admin = as_role("admin")
    created = [client.post("/fhir/Patient", headers=admin, json={
        "resourceType": "Patient", "name": [{"family": f"Sync{n}"}]}).get_json()
        for n in range(3)]
    for patient in created:
        stamp = quote(patient["meta"]["lastUpdated"])
        assert found(client, admin, "Patient", f"_lastUpdated=eq{stamp}") == {patient["id"]}
        later = {p["id"] for p in created if p["meta"]["lastUpdated"] >
                 patient["meta"]["lastUpdated"]}
        assert found(client, admin, "Patient", f"_lastUpdated=gt{stamp}") == later


def test_practitioner_role_search_serves_practitioner_roles(app, client, as_role):
    admin = as_role("admin")
    as_role("doctor")
    bundle = parse_fhir(client.get("/fhir/PractitionerRole?role=ict", headers=admin).data)
    assert bundle.total == 1
    assert bundle.entry[0].resource.get_resource_type() == "PractitionerRole"
    assert found(client, admin, "PractitionerRole", "role=admin") == set()


# --- _sort: by each declared parameter, as the served values order ---------------------------

SORTED_ELEMENTS = {
    ("Patient", "family"): lambda r: r["name"][0].get("family"),
    ("Patient", "birthdate"): lambda r: r.get("birthDate"),
    ("Patient", "identifier"): lambda r: next((i["value"] for i in r.get("identifier", [])
                                               if i.get("system") == "urn:test:sort"), None),
    ("Task", "status"): lambda r: r["status"],
    ("Observation", "value-concept"): lambda r: r["valueCodeableConcept"]["coding"][-1]["code"],
}


@pytest.mark.parametrize(("resource_type", "name"), sorted(SORTED_ELEMENTS))
def test_sort_by_each_parameter_orders_as_the_served_values(app, client, as_role,
                                                            resource_type, name):
    admin = as_role("admin")
    if resource_type == "Patient":
        for family, birth, mrn in (("Zulu", "1990-01-01", "b"), ("alpha", None, "c"),
                                   ("Mike", "1970-05-05", None), ("Mike", "1980-01-01", "a")):
            body = {"resourceType": "Patient", "name": [{"family": family}]}
            if birth:
                body["birthDate"] = birth
            if mrn:
                body["identifier"] = [{"system": "urn:test:sort", "value": mrn}]
            assert client.post("/fhir/Patient", json=body, headers=admin).status_code == 201
    else:
        with app.app_context():
            make_scan("DOCTOR_VERIFIED")
            make_scan("PENDING_AI")
            make_scan("AI_ANALYZED")
    reader = admin if resource_type == "Patient" else as_role("doctor")
    value = SORTED_ELEMENTS[resource_type, name]
    resources = everything(client, reader, resource_type)
    for descending in (False, True):
        present = sorted((r for r in resources if value(r) is not None),
                         key=lambda r: (value(r),), reverse=descending)
        absent = [r for r in resources if value(r) is None]
        expected = [value(r) for r in present] + [None] * len(absent)
        sort = f"-{name}" if descending else name
        bundle = client.get(f"/fhir/{resource_type}?_sort={sort}&_count=2", headers=reader)
        assert bundle.status_code == 200, bundle.get_data(as_text=True)
        served: list = []
        page = bundle.get_json()
        while True:  # the offset pages, in order
            served += [value(e["resource"]) for e in page.get("entry", [])]
            nexts = [link["url"] for link in page["link"] if link["relation"] == "next"]
            if not nexts:
                break
            page = client.get("/fhir/" + nexts[0].split("/fhir/", 1)[1], headers=reader
                              ).get_json()
        assert served == expected, (sort, served, expected)


def test_every_identifier_a_patient_was_sent_with_finds_it(client, as_role):
    # Found by the CapabilityStatement-driven run: only the MRN column was searched.
    doctor = as_role("doctor")
    body = {"resourceType": "Patient", "name": [{"family": "Okafor"}], "identifier": [
        {"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "999911120"},
        {"system": "urn:test:mrn", "value": "MRN-ID-2",
         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                              "code": "MR"}]}}]}
    created = client.post("/fhir/Patient", json=body, headers=doctor).get_json()["id"]
    for query in ("999911120", "urn:oid:2.16.840.1.113883.2.4.6.3|999911120",
                  "urn:oid:2.16.840.1.113883.2.4.6.3|", "MRN-ID-2", "urn:test:mrn|MRN-ID-2"):
        assert found(client, doctor, "Patient", f"identifier={quote(query)}") == {created}, \
            query
    assert created not in found(client, doctor, "Patient",
                                f"identifier:not={quote('urn:oid:2.16.840.1.113883.2.4.6.3|')}")
    assert not found(client, doctor, "Patient", "identifier=urn:other|999911120")


def test_active_is_a_boolean_token_without_a_system(client, as_role):
    doctor = as_role("doctor")
    body = {"resourceType": "Patient", "active": False, "name": [{"family": "Inactive"}]}
    created = client.post("/fhir/Patient", json=body, headers=doctor).get_json()["id"]
    assert created in found(client, doctor, "Patient", "active=false")
    assert not found(client, doctor, "Patient", f"active={quote('urn:any|false')}")
    assert not found(client, doctor, "Patient", f"active={quote('urn:any|no-such-code')}")
    refused = client.get("/fhir/Patient?active=no-such-code",
                         headers={**doctor, "Prefer": "handling=strict"})
    assert refused.status_code == 400 and "true or false" in refused.get_data(as_text=True)


def test_a_reference_to_another_type_finds_nothing_and_an_unsortable_sort_is_refused(
        app, client, as_role):
    with app.app_context():
        make_scan("AI_ANALYZED")
    doctor = as_role("doctor")
    # R4's Task-focus admits any type: a Patient reference is a question, answered empty.
    assert not found(client, doctor, "Task", "focus=Patient/no-such-patient")
    strict = {**doctor, "Prefer": "handling=strict"}
    assert client.get("/fhir/Task?focus:Patient=x", headers=strict).status_code == 400
    refused = client.get("/fhir/Provenance?_sort=patient", headers=strict)
    assert refused.status_code == 400, refused.get_data(as_text=True)
    assert "scan-patient" in refused.get_json()["issue"][0]["diagnostics"]


def test_audit_event_patient_is_the_entity_or_the_agent_as_r4_defines_it(app, client,
                                                                          as_role, new_user):
    from tests.factories import login

    patient = new_user("patient")
    login(client, patient)  # the patient signs in: the agent, no record touched
    admin = as_role("admin")
    events = everything(client, admin, "AuditEvent")
    expected = {e["id"] for e in events
                if any(a.get("who", {}).get("reference") == f"Patient/{patient.patient_id}"
                       for a in e["agent"])
                or any(x.get("what", {}).get("reference") == f"Patient/{patient.patient_id}"
                       for x in e.get("entity", []))}
    assert expected
    assert found(client, admin, "AuditEvent", f"patient=Patient/{patient.patient_id}") == \
        expected
