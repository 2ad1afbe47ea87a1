"""A patient never reads another patient's anything: every type, by id, history and search
(with the patient parameter, _id, _include and _revinclude)."""

from __future__ import annotations

import json

from csss_fhir import workflow
from csss_fhir.extensions import services
from csss_fhir.models import (
    AiPrediction,
    AuditRecord,
    DoctorReview,
    Prescription,
    Report,
    Scan,
    Task,
    WorkflowEvent,
    db,
)
from csss_fhir.resources import SERVED
from tests.factories import (
    actor_for,
    make_scan,
    make_user,
    medication_request,
    parse_fhir,
)

INCLUDES = ("_include=ImagingStudy:patient", "_include=DiagnosticReport:result",
            "_include=Observation:derived-from", "_revinclude=ImagingStudy:patient",
            "_revinclude=Provenance:target", "_revinclude=Observation:derived-from",
            "_revinclude=DiagnosticReport:result")


def _other_patients_data(app, client, as_role) -> tuple[dict[str, list[str]], str]:
    """Patient B's scan taken to REPORT_READY with a prescription; B's ids by FHIR type."""
    with app.app_context():
        scan_id, other = make_scan("DOCTOR_VERIFIED")
        other_patient = other.patient_id
    headers = as_role("pharmacist")
    assert client.post("/fhir/MedicationRequest", headers=headers,
                       json=medication_request(other_patient, scan_id)).status_code == 201
    with app.app_context():
        svc = services()
        workflow.pharmacy_review(db.session, actor_for(make_user("pharmacist")[0]), scan_id,
                                 note="Done.")
        workflow.approve(db.session, svc, actor_for(make_user("admin")[0]), scan_id)
        scan = db.session.get(Scan, scan_id)
        report = db.session.query(Report).filter_by(scan_id=scan_id).one()
        ids = {
            "Patient": [other_patient],
            "ImagingStudy": [scan_id],
            "Task": [t.id for t in db.session.query(Task).filter_by(scan_id=scan_id)],
            "Observation": [r.id for m in (AiPrediction, DoctorReview)
                            for r in db.session.query(m).filter_by(scan_id=scan_id)],
            "MedicationRequest": [r.id for r in
                                  db.session.query(Prescription).filter_by(scan_id=scan_id)],
            "DiagnosticReport": [report.id],
            "Provenance": [e.id for e in
                           db.session.query(WorkflowEvent).filter_by(scan_id=scan_id)],
            "Binary": [scan.image_id, report.pdf_id],
        }
    # Staff looked at B's data, so B has audit events too.
    doctor_headers = as_role("doctor")
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=doctor_headers
                      ).status_code == 200
    with app.app_context():
        ids["AuditEvent"] = [r.id for r in
                             db.session.query(AuditRecord).filter_by(patient_id=other_patient)]
    assert all(ids.values()), ids
    return ids, other_patient


def test_a_patient_reads_nothing_of_another_patient(app, client, as_role):
    ids, other_patient = _other_patients_data(app, client, as_role)
    mine = as_role("patient")
    secret_ids = {i for values in ids.values() for i in values}
    leaks: list[str] = []

    for resource_type, values in ids.items():
        for resource_id in values:
            paths = [f"/fhir/{resource_type}/{resource_id}"]
            if resource_type != "Binary":
                paths += [f"/fhir/{resource_type}/{resource_id}/_history",
                          f"/fhir/{resource_type}/{resource_id}/_history/1"]
            for path in paths:
                response = client.get(path, headers=mine)
                if response.status_code not in (403, 404):
                    leaks.append(f"GET {path}: {response.status_code}")
                elif response.mimetype == "application/fhir+json":
                    parse_fhir(response.data, "OperationOutcome")

    for resource_type in SERVED:
        queries = ["", f"patient={other_patient}", f"subject=Patient/{other_patient}",
                   f"_id={','.join(ids.get(resource_type, ['x']))}", *INCLUDES]
        for query in queries:
            # POST _search shares GET's code path: one query form is enough to cover it.
            for method in ("GET", "POST") if query.startswith("patient=") else ("GET",):
                if method == "GET":
                    response = client.get(f"/fhir/{resource_type}?{query}", headers=mine)
                else:
                    response = client.post(f"/fhir/{resource_type}/_search", headers=mine,
                                           data=query, content_type=
                                           "application/x-www-form-urlencoded")
                if response.status_code == 403:
                    continue
                if response.status_code >= 500:
                    leaks.append(f"{method} {resource_type}?{query}: {response.status_code}")
                    continue
                # The entries only: the self link echoes the query, ids and all.
                body = response.get_json(silent=True) or {}
                text = json.dumps(body.get("entry", []))
                found = [i for i in secret_ids if i in text]
                if found:
                    leaks.append(f"{method} {resource_type}?{query} shows {found}")
    assert not leaks, "\n".join(leaks)
