"""An independent FHIR client (fhirpy, from PyPI) against the running server."""

from __future__ import annotations

import json

import requests
from fhirpy import SyncFHIRClient

from tests.factories import (
    login,
    make_login,
    make_scan,
    make_user,
    medication_request,
    parse_fhir,
)


def plain(value) -> dict:
    """JSON data of what fhirpy returned, for parse_fhir."""
    if hasattr(value, "serialize"):
        return value.serialize()
    return json.loads(json.dumps(value, default=plain))


def client_for(live, role: str) -> SyncFHIRClient:
    headers = login(live, make_login(live.app, role))
    return SyncFHIRClient(f"{live.url}/fhir", authorization=headers["Authorization"])


def test_fhirpy_pages_reads_includes_and_creates(live_server):
    with live_server.app.app_context():
        for _ in range(23):
            make_user("patient")
        verified, _ = make_scan("DOCTOR_VERIFIED")
        released, _ = make_scan("REPORT_READY")
    doctor = client_for(live_server, "doctor")

    # Search with paging: fhirpy follows the Bundle's next links.
    patients = doctor.resources("Patient").limit(10).fetch_all()
    assert len(patients) == 25 and len({p.id for p in patients}) == 25
    for patient in patients:
        parse_fhir(patient.serialize(), "Patient")
    first_page = doctor.resources("Patient").limit(10).fetch_raw()
    parse_fhir(plain(first_page), "Bundle")
    assert first_page.total == 25 and len(first_page.entry) == 10

    # Read.
    read = doctor.reference("Patient", patients[3].id).to_resource()
    assert parse_fhir(read.serialize(), "Patient").id == patients[3].id

    # _include: the report with both Observations it cites.
    bundle = doctor.resources("DiagnosticReport").search(
        _id=_report_id(live_server, released)).include("DiagnosticReport", "result").fetch_raw()
    parse_fhir(plain(bundle), "Bundle")
    entries = plain(bundle)["entry"]
    modes = sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in entries)
    assert modes == [("DiagnosticReport", "match"), ("Observation", "include"),
                     ("Observation", "include")]
    labels = {e["resource"]["meta"].get("security", [{}])[0].get("code") for e in entries}
    assert labels == {"AIAST", "CLINAST_AIRPT"}
    for entry in entries:
        parse_fhir(entry["resource"])

    # Create a MedicationRequest as the pharmacist.
    pharmacist = client_for(live_server, "pharmacist")
    study = pharmacist.reference("ImagingStudy", verified).to_resource()
    body = medication_request(study.subject.reference.split("/")[1], verified)
    created = pharmacist.resource("MedicationRequest", **body)
    created.save()
    assert created.id
    parse_fhir(created.serialize(), "MedicationRequest")
    found = pharmacist.resources("MedicationRequest").search(
        subject=study.subject.reference).fetch()
    assert [r.id for r in found] == [created.id]

    # The capability statement parses and names what the client just used.
    metadata = requests.get(f"{live_server.url}/fhir/metadata", timeout=30).json()
    parse_fhir(metadata, "CapabilityStatement")
    report = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "DiagnosticReport")
    assert "DiagnosticReport:result" in report["searchInclude"]


def test_fhirpy_includes_derived_from_and_reads_back_what_it_created(live_server):
    from tests.unit.api.test_fidelity import FULL_PATIENT, sent_is_kept

    with live_server.app.app_context():
        scan_id, _ = make_scan("DOCTOR_VERIFIED")
    doctor = client_for(live_server, "doctor")
    bundle = plain(doctor.resources("Observation").include(
        "Observation", "derived-from").fetch_raw())
    parse_fhir(bundle, "Bundle")
    matched = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    included = {f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert len(matched) == 2 and included == {f"ImagingStudy/{scan_id}"}

    created = doctor.resource("Patient", **FULL_PATIENT)
    created.save()
    read = doctor.reference("Patient", created.id).to_resource().serialize()
    parse_fhir(read, "Patient")
    sent_is_kept(FULL_PATIENT, read)


def _report_id(live, scan_id: str) -> str:
    from csss_fhir.models import Scan, db

    with live.app.app_context():
        return db.session.get(Scan, scan_id).report.id
