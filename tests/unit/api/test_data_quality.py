"""Data quality of what the server emits (issue 16 item 10): only real references in
AuditEvent.entity.what, version-specific Provenance targets, one certainty component per
class, and a generated narrative on every resource served (dom-6)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tests.factories import make_scan, medication_request, parse_fhir

REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
SERVED = ("Patient", "Practitioner", "PractitionerRole", "ImagingStudy", "Task", "Observation",
          "MedicationRequest", "DiagnosticReport", "Provenance", "Device", "AuditEvent")


def every_resource(client, headers, resource_type: str) -> list[dict]:
    bundle = client.get(f"/fhir/{resource_type}?_count=100", headers=headers).get_json()
    return [e["resource"] for e in bundle.get("entry", [])]


def test_every_served_resource_has_a_generated_narrative(app, client, as_role):
    with app.app_context():
        make_scan("REPORT_READY")
        study_id, patient = make_scan("DOCTOR_VERIFIED")
        patient_id = patient.patient_id
    admin, pharmacist = as_role("admin"), as_role("pharmacist")
    assert client.post("/fhir/MedicationRequest", headers=pharmacist,
                       json=medication_request(patient_id, study_id)).status_code == 201
    client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=admin)
    seen = set()
    for resource_type in SERVED:
        reader = pharmacist if resource_type == "MedicationRequest" else admin
        for resource in every_resource(client, reader, resource_type):
            parse_fhir(resource, resource_type)
            text = resource["text"]
            assert text["status"] == "generated", resource_type
            div = ET.fromstring(text["div"])
            assert div.tag == "{http://www.w3.org/1999/xhtml}div"
            assert resource["id"] in "".join(div.itertext())
            seen.add(resource_type)
    assert seen == set(SERVED)
    metadata = client.get("/fhir/metadata").get_json()
    assert metadata["text"]["status"] == "generated"
    outcome = client.get("/fhir/Patient/nope", headers=admin).get_json()
    assert outcome["text"]["status"] == "generated"


def test_audit_entities_reference_only_resources(app, client, as_role):
    admin = as_role("admin")
    created = client.post("/fhir/Patient", headers=admin, json={
        "resourceType": "Patient", "name": [{"family": "Audited"}]}).get_json()
    client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=admin)
    client.get(f"/fhir/Patient/{created['id']}/_history", headers=admin)
    client.get(f"/fhir/Patient/{created['id']}/_history/1", headers=admin)
    client.get("/fhir/Observation", headers=admin)
    events = every_resource(client, admin, "AuditEvent")
    whats = [e["what"]["reference"] for event in events for e in event.get("entity", [])
             if "reference" in e.get("what", {})]
    assert whats and all(REFERENCE.fullmatch(w) for w in whats), whats
    paths = {d["valueString"] for event in events for e in event.get("entity", [])
             for d in e.get("detail", [])}
    assert {"Patient/$validate", "Observation"} <= paths


def test_provenance_targets_name_the_version_each_step_wrote(app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = as_role("doctor")
    bundle = client.get(f"/fhir/Provenance?target=ImagingStudy/{scan_id}&_count=100",
                        headers=doctor).get_json()
    provenances = [e["resource"] for e in bundle["entry"]]
    assert len(provenances) == 3  # upload, classify, verify
    for provenance in provenances:
        step = provenance["activity"]["text"]
        for target in provenance["target"]:
            reference = target["reference"]
            assert re.fullmatch(r"[A-Za-z]+/[^/]+/_history/\d+", reference), reference
            version = client.get(f"/fhir/{reference}", headers=doctor)
            assert version.status_code == 200, reference
            if reference.startswith("Task/"):
                # The Task as the step left it: its state is the step's new state.
                state = parse_fhir(version.data, "Task").businessStatus.text
                assert step.endswith(f"-> {state}"), (step, state)
        # A version-specific target still finds its Provenance.
        found = client.get(f"/fhir/Provenance?target={provenance['target'][0]['reference']}",
                           headers=doctor).get_json()
        assert provenance["id"] in {e["resource"]["id"] for e in found["entry"]}


def test_ai_components_code_the_measure_and_name_the_class_apart(app, client, as_role):
    with app.app_context():
        make_scan("AI_ANALYZED")
    doctor = as_role("doctor")
    [observation] = every_resource(client, doctor, "Observation")
    classes = set()
    for component in observation["component"]:
        assert [(c["system"], c["code"]) for c in component["code"]["coding"]] == [
            ("http://dicom.nema.org/resources/ontology/DCM", "111012")]
        [finding] = component["extension"]
        classes.add(finding["valueCodeableConcept"]["coding"][-1]["code"])
        assert 0 <= component["valueQuantity"]["value"] <= 1
    assert len(classes) == len(observation["component"])
