"""$verify without a default, $return-to-patient, $send-back and $prioritize over /fhir:
who may, in which states, with which inputs, and what FHIR they leave behind."""

from __future__ import annotations

import pytest

from csss_fhir.models import DoctorReview, MailMessage, Scan, WorkflowEvent, db
from tests.factories import make_scan, parameters, parse_fhir

FHIR = "application/fhir+json"


def scan_in(app, state: str) -> str:
    with app.app_context():
        return make_scan(state)[0]


def post(client, headers, study_id: str, operation: str, body: dict | None = None):
    return client.post(f"/fhir/ImagingStudy/{study_id}/${operation}", headers=headers,
                       json=body if body is not None else {})


def outcome(response) -> dict:
    parse_fhir(response.data, "OperationOutcome")
    return response.get_json()["issue"][0]


# --- $verify: agree is required -------------------------------------------------------

def test_verify_without_agree_is_a_400_naming_the_parameter(app, client, as_role):
    study = scan_in(app, "AI_ANALYZED")
    response = post(client, as_role("doctor"), study, "verify",
                    parameters(note="Clear lungs.", finding="Normal"))
    assert response.status_code == 400
    issue = outcome(response)
    assert "'agree' is required" in issue["diagnostics"]
    assert issue["expression"] == ["agree"]
    with app.app_context():
        assert db.session.get(Scan, study).task.state == "AI_ANALYZED"


def test_verify_with_agree_false_and_a_finding_is_kept(app, client, as_role):
    study = scan_in(app, "AI_ANALYZED")
    response = post(client, as_role("doctor"), study, "verify",
                    parameters(note="Clear lungs.", agree=False, finding="Normal"))
    assert response.status_code == 201, response.get_data(as_text=True)
    observation = parse_fhir(response.data, "Observation")
    assert observation.status == "final"
    assert observation.component[0].valueBoolean is False


@pytest.fixture
def blind_app(tmp_path, migrated_template):
    import shutil

    from csss_fhir import create_app
    from tests.factories import settings_for

    shutil.copy(migrated_template, tmp_path / "blind.db")
    return create_app(settings_for(tmp_path / "instance", f"sqlite:///{tmp_path / 'blind.db'}",
                                   blind_read=True, confidence_threshold=0.0))


def test_blind_read_needs_a_provisional_finding_and_keeps_both(blind_app):
    from tests.factories import login, make_login

    client = blind_app.test_client()
    doctor = login(client, make_login(blind_app, "doctor"))
    study = scan_in(blind_app, "AI_ANALYZED")
    refused = post(client, doctor, study, "verify",
                   parameters(note="Seen.", agree=False, finding="Normal"))
    assert refused.status_code == 400
    assert outcome(refused)["expression"] == ["provisionalFinding"]
    response = post(client, doctor, study, "verify", parameters(
        note="Seen.", agree=False, finding="Normal", provisionalFinding="Lung_Opacity"))
    assert response.status_code == 201, response.get_data(as_text=True)
    observation = parse_fhir(response.data, "Observation")
    assert observation.valueCodeableConcept.text == "Normal"
    assert observation.component[1].valueCodeableConcept.text == "Lung Opacity"


# --- $return-to-patient ----------------------------------------------------------------

@pytest.mark.parametrize("state", ["PENDING_AI", "AI_ANALYZED"])
def test_the_doctor_returns_a_scan_to_the_patient(app, client, as_role, state):
    study = scan_in(app, state)
    reason = "The image is cut off above the diaphragm; please send a full chest X-ray."
    response = post(client, as_role("doctor"), study, "return-to-patient",
                    parameters(reason=reason))
    assert response.status_code == 200, response.get_data(as_text=True)
    task = parse_fhir(response.data, "Task")
    assert task.status == "rejected"
    assert task.businessStatus.text == "RETURNED"
    assert task.statusReason.text == reason
    with app.app_context():
        scan = db.session.get(Scan, study)
        assert scan.task.state == "RETURNED"
        event = db.session.query(WorkflowEvent).filter_by(
            scan_id=study, step="return-to-patient").one()
        assert event.reason == reason
        from csss_fhir.mail.messages import patient_address

        mail = db.session.query(MailMessage).filter_by(kind="returned").one()
        assert mail.recipient == patient_address(db.session, scan.patient)
        assert reason in mail.raw.decode()
    provenance = client.get(f"/fhir/Provenance?target=Task/{task.id}",
                            headers=as_role("admin"))
    bundle = parse_fhir(provenance.data, "Bundle")
    reasons = [entry.resource.reason[0].text for entry in bundle.entry
               if entry.resource.reason]
    assert reason in reasons


def test_a_returned_scan_leaves_every_worklist_and_no_step_applies(app, client, as_role):
    study = scan_in(app, "AI_ANALYZED")
    doctor = as_role("doctor")
    assert post(client, doctor, study, "return-to-patient",
                parameters(reason="Blurred.")).status_code == 200
    verify = post(client, doctor, study, "verify",
                  parameters(note="x", agree=True))
    assert verify.status_code == 409
    assert "RETURNED" in outcome(verify)["diagnostics"]
    assert post(client, doctor, study, "return-to-patient",
                parameters(reason="Again.")).status_code == 409
    with app.app_context():
        from csss_fhir.web import worklists
        from csss_fhir.workflow.states import ScanState
        from tests.factories import actor_for, make_user

        for role in ("doctor", "pharmacist", "admin"):
            actor = actor_for(make_user(role)[0])
            queue = worklists.staff_queue(db.session, actor, [s for s in ScanState
                                                              if s != "RETURNED"])
            assert study not in [row.scan.id for row in queue]


@pytest.mark.parametrize("role", ["pharmacist", "admin", "patient"])
def test_only_a_doctor_returns_a_scan(app, client, as_role, role):
    study = scan_in(app, "AI_ANALYZED")
    response = post(client, as_role(role), study, "return-to-patient",
                    parameters(reason="Blurred."))
    assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, parameters(reason="   ")])
def test_returning_needs_a_reason(app, client, as_role, body):
    study = scan_in(app, "AI_ANALYZED")
    response = post(client, as_role("doctor"), study, "return-to-patient", body)
    assert response.status_code == 400
    assert outcome(response)["expression"] == ["reason"]


@pytest.mark.parametrize("state", ["DOCTOR_VERIFIED", "REPORT_READY"])
def test_a_verified_scan_cannot_be_returned(app, client, as_role, state):
    study = scan_in(app, state)
    response = post(client, as_role("doctor"), study, "return-to-patient",
                    parameters(reason="Blurred."))
    assert response.status_code == 409


# --- $send-back ------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "state"), [("pharmacist", "DOCTOR_VERIFIED"),
                                             ("admin", "PHARMACIST_COMPLETED")])
def test_send_back_supersedes_the_verification_and_keeps_it_readable(
        app, client, as_role, role, state):
    study = scan_in(app, state)
    with app.app_context():
        first_review = db.session.get(Scan, study).review.id
    headers = as_role(role)
    reason = "The note describes consolidation but the finding says Normal."
    response = post(client, headers, study, "send-back", parameters(reason=reason))
    assert response.status_code == 200, response.get_data(as_text=True)
    task = parse_fhir(response.data, "Task")
    assert task.businessStatus.text == "AI_ANALYZED"

    old = client.get(f"/fhir/Observation/{first_review}", headers=headers)
    assert old.status_code == 200
    observation = parse_fhir(old.data, "Observation")
    assert observation.status == "cancelled"
    assert reason in observation.note[-1].text
    versions = parse_fhir(client.get(f"/fhir/Observation/{first_review}/_history",
                                     headers=headers).data, "Bundle")
    assert [e.resource.status for e in versions.entry] == ["cancelled", "final"]

    # The doctor verifies again; the new verification is the current one.
    doctor = as_role("doctor")
    again = post(client, doctor, study, "verify",
                 parameters(note="Consolidation right lower lobe.", agree=False,
                            finding="Bacterial_Pneumonia"))
    assert again.status_code == 201, again.get_data(as_text=True)
    with app.app_context():
        scan = db.session.get(Scan, study)
        assert scan.review.finding == "Bacterial_Pneumonia"
        reviews = db.session.query(DoctorReview).filter_by(scan_id=study).all()
        assert sorted(r.status for r in reviews) == ["cancelled", "final"]


def test_prescriptions_stay_after_a_send_back_and_the_review_can_be_done_again(
        app, client, as_role):
    from tests.factories import medication_request

    study = scan_in(app, "DOCTOR_VERIFIED")
    pharmacist = as_role("pharmacist")
    with app.app_context():
        patient_id = db.session.get(Scan, study).patient_id
    created = client.post("/fhir/MedicationRequest", headers=pharmacist,
                          json=medication_request(patient_id, study))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert post(client, pharmacist, study, "pharmacy-review",
                parameters(note="Checked.")).status_code == 200
    admin = as_role("admin")
    assert post(client, admin, study, "send-back",
                parameters(reason="Please review the finding.")).status_code == 200
    assert post(client, as_role("doctor"), study, "verify",
                parameters(note="Reviewed.", agree=False, finding="Normal")).status_code == 201
    assert post(client, pharmacist, study, "pharmacy-review",
                parameters(note="Checked again.")).status_code == 200
    bundle = parse_fhir(client.get(f"/fhir/MedicationRequest?patient={patient_id}",
                                   headers=pharmacist).data, "Bundle")
    assert len(bundle.entry) == 1


@pytest.mark.parametrize("role", ["doctor", "patient"])
def test_only_the_pharmacist_and_the_admin_send_back(app, client, as_role, role):
    study = scan_in(app, "DOCTOR_VERIFIED")
    response = post(client, as_role(role), study, "send-back", parameters(reason="Why?"))
    assert response.status_code == 403


@pytest.mark.parametrize("state", ["PENDING_AI", "AI_ANALYZED", "REPORT_READY"])
def test_send_back_in_the_wrong_state_is_a_409(app, client, as_role, state):
    study = scan_in(app, state)
    response = post(client, as_role("pharmacist"), study, "send-back",
                    parameters(reason="Why?"))
    assert response.status_code == 409


def test_send_back_needs_a_reason(app, client, as_role):
    study = scan_in(app, "DOCTOR_VERIFIED")
    response = post(client, as_role("pharmacist"), study, "send-back", {})
    assert response.status_code == 400
    assert outcome(response)["expression"] == ["reason"]


def test_send_back_honours_if_match(app, client, as_role):
    study = scan_in(app, "DOCTOR_VERIFIED")
    headers = {**as_role("pharmacist"), "If-Match": 'W/"1"'}
    response = post(client, headers, study, "send-back", parameters(reason="Why?"))
    assert response.status_code == 412


# --- $prioritize and the worklist order -------------------------------------------------

def test_the_doctor_marks_a_scan_urgent_and_it_comes_first(app, client, as_role):
    older = scan_in(app, "AI_ANALYZED")
    newer = scan_in(app, "AI_ANALYZED")
    doctor = as_role("doctor")
    response = post(client, doctor, newer, "prioritize", parameters(priority="urgent"))
    assert response.status_code == 200, response.get_data(as_text=True)
    task = parse_fhir(response.data, "Task")
    assert task.priority == "urgent" and task.businessStatus.text == "AI_ANALYZED"
    with app.app_context():
        from csss_fhir.web import worklists
        from tests.factories import actor_for, make_user

        actor = actor_for(make_user("doctor")[0])
        order = [row.scan.id for row in worklists.staff_queue(
            db.session, actor, ["AI_ANALYZED"])]
    assert order.index(newer) < order.index(older)


@pytest.mark.parametrize("priority", [None, "asap", ""])
def test_priority_must_be_routine_or_urgent(app, client, as_role, priority):
    study = scan_in(app, "AI_ANALYZED")
    body = parameters(priority=priority) if priority is not None else {}
    response = post(client, as_role("doctor"), study, "prioritize", body)
    assert response.status_code == 400
    assert outcome(response)["expression"] == ["priority"]


def test_only_a_doctor_prioritizes_and_only_before_verification(app, client, as_role):
    study = scan_in(app, "AI_ANALYZED")
    assert post(client, as_role("pharmacist"), study, "prioritize",
                parameters(priority="urgent")).status_code == 403
    verified = scan_in(app, "DOCTOR_VERIFIED")
    assert post(client, as_role("doctor"), verified, "prioritize",
                parameters(priority="urgent")).status_code == 409


def test_the_capability_statement_lists_the_new_operations(client):
    statement = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    imaging = next(r for r in statement.rest[0].resource if r.type == "ImagingStudy")
    assert {"return-to-patient", "send-back", "prioritize"} <= {o.name for o in imaging.operation}
