"""_include and _revinclude (csss_fhir/search/includes.py)."""

from __future__ import annotations

from csss_fhir.search import INCLUDES, REVINCLUDES
from csss_fhir.search.includes import FORWARD, REVERSE
from tests.factories import make_scan, parse_fhir
from tests.unit.search.test_query import total


def test_every_declared_include_has_a_way_to_find_its_rows():
    assert {name for names in INCLUDES.values() for name in names} == set(FORWARD)
    assert {name for names in REVINCLUDES.values() for name in names} == set(REVERSE)


def test_observation_codes_revinclude_and_sort(app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = as_role("doctor")
    assert total(client, doctor, "Observation?code=http://dicom.nema.org/resources/ontology/"
                                 "DCM|121071") == 2
    assert total(client, doctor, "Observation?code=http://loinc.org|121071") == 0
    assert total(client, doctor, "Observation?category=imaging") == 2
    assert total(client, doctor, "Observation?status:not=final") == 1
    assert total(client, doctor, f"Observation?derived-from=ImagingStudy/{scan_id}") == 2
    observations = parse_fhir(client.get("/fhir/Observation?_sort=_lastUpdated",
                                         headers=doctor).data)
    ai, verified = (e.resource for e in observations.entry)
    assert ai.status == "preliminary" and verified.status == "final"
    assert ai.meta.security[0].code == "AIAST"
    assert verified.meta.security[0].code == "CLINAST_AIRPT"
    finding = ai.valueCodeableConcept.coding[-1].code
    assert total(client, doctor, f"Observation?value-concept={finding}") >= 1
    study = parse_fhir(client.get(
        f"/fhir/ImagingStudy?_id={scan_id}&_revinclude=Observation:derived-from"
        "&_revinclude=Provenance:target", headers=doctor).data)
    included = sorted(e.resource.get_resource_type() for e in study.entry
                      if e.search.mode == "include")
    assert included == ["Observation", "Observation", "Provenance"]  # + the upload's
    result = parse_fhir(client.get(f"/fhir/Observation?_id={verified.id}"
                                   "&_revinclude=Provenance:target", headers=doctor).data)
    provenance = next(e.resource for e in result.entry
                      if e.resource.get_resource_type() == "Provenance")
    kinds = {a.type.coding[0].code: a.who.reference for a in provenance.agent}
    assert kinds["verifier"].startswith("Practitioner/")
    assert kinds["author"] == f"Device/{ai.device.reference.split('/')[1]}"
    assert {e.what.reference for e in provenance.entity} >= {f"Observation/{ai.id}"}




def test_every_include_and_revinclude_answers_over_a_released_scan(app, client, as_role):
    """Observation:derived-from on the doctor's Observation (which has no `scan` of its
    own) was a 500."""
    with app.app_context():
        make_scan("REPORT_READY")
    headers = as_role("admin")
    for kind, table in (("_include", INCLUDES), ("_revinclude", REVINCLUDES)):
        for resource_type, values in table.items():
            for value in values:
                response = client.get(f"/fhir/{resource_type}?{kind}={value}",
                                      headers=headers)
                assert response.status_code == 200, (resource_type, kind, value)
                parse_fhir(response.data, "Bundle")
    bundle = client.get("/fhir/Observation?_include=Observation:derived-from",
                        headers=headers).get_json()
    included = {e["resource"]["resourceType"] for e in bundle["entry"]
                if e["search"]["mode"] == "include"}
    assert included == {"ImagingStudy"}  # the AI Observation is a match already


def test_include_derived_from_follows_a_doctors_observation_to_both_sources(
        app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = as_role("doctor")
    response = client.get("/fhir/Observation?_include=Observation:derived-from", headers=doctor)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_fhir(response.data, "Bundle")
    matched = [e.resource for e in bundle.entry if e.search.mode == "match"]
    included = {f"{e.resource.get_resource_type()}/{e.resource.id}" for e in bundle.entry
                if e.search.mode == "include"}
    # The expectation, from the matched resources themselves: every derivedFrom target that
    # is not itself on the page.
    on_page = {f"Observation/{o.id}" for o in matched}
    expected = {ref.reference for o in matched for ref in o.derivedFrom} - on_page
    assert expected == {f"ImagingStudy/{scan_id}"} and included == expected
