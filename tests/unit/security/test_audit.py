"""The audit trail: sign-ins, OTP events, reads, searches, writes and PDF exports become
AuditEvents that admins search by patient, agent and date; nothing secret is kept."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from csss_fhir.models import AuditRecord, Report, db
from csss_fhir.security import audit
from csss_fhir.security.errors import AccessDeniedError
from tests.factories import (
    actor_for,
    auth_headers,
    latest_code,
    make_scan,
    make_user,
    parse_fhir,
)


def _audit(client, headers, **params) -> list:
    response = client.get("/fhir/AuditEvent", headers=headers, query_string={
        "_count": 100, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_fhir(response.data, "Bundle")
    return [e.resource for e in bundle.entry or [] if e.resource.get_resource_type() ==
            "AuditEvent"]


def response_text(client, headers) -> str:
    return client.get("/fhir/AuditEvent?_count=100", headers=headers).get_data(as_text=True)


def test_patient_reads_searches_and_pdf_export_are_audited_per_patient(app, client):
    with app.app_context():
        scan_id, patient = make_scan("REPORT_READY")
        other_scan, other = make_scan("PENDING_AI")
        doctor, password = make_user("doctor")
        admin, admin_password = make_user("admin")
        patient_id, other_id = patient.patient_id, other.patient_id
        doctor_email, doctor_id, admin_email = doctor.email, doctor.id, admin.email
        pdf_id = db.session.query(Report).filter_by(scan_id=scan_id).one().pdf_id
    doctor_headers = auth_headers(client, app, doctor_email, password, "doctor")
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=doctor_headers
                      ).status_code == 200
    assert client.get("/fhir/ImagingStudy?_count=50", headers=doctor_headers).status_code == 200
    assert client.get(f"/fhir/Binary/{pdf_id}", headers=doctor_headers).status_code == 200
    admin_headers = auth_headers(client, app, admin_email, admin_password, "admin")

    mine = _audit(client, admin_headers, patient=patient_id,
                  agent=f"Practitioner/{doctor_id}")
    kinds = sorted((e.type.code, e.action) for e in mine)
    assert ("110110", "R") in kinds  # the read
    assert ("110112", "E") in kinds  # the search
    assert ("110106", "R") in kinds  # the PDF export
    theirs = _audit(client, admin_headers, patient=other_id, agent=doctor_id)
    assert [e.type.code for e in theirs] == ["110112"]  # only the search touched them
    query = next(e for e in mine if e.type.code == "110112").entity[-1].query
    assert query and base64.b64encode(b"_count=50").decode() in response_text(client, admin_headers)
    assert _audit(client, admin_headers, patient=patient_id, date="ge2000-01-01")
    assert not _audit(client, admin_headers, patient=patient_id, date="lt2000-01-01")


def test_sign_ins_and_codes_are_audited(app, client):
    with app.app_context():
        admin, password = make_user("admin")
        email, admin_id = admin.email, admin.id
    client.post("/auth/token", json={"username": email, "password": "not-the-password"})
    client.post("/auth/otp", json={"username": email, "password": password})
    code = latest_code(app, email)
    client.post("/auth/token", json={"username": email, "password": password, "otp": "000000"
                                     if code != "000000" else "111111"})
    client.post("/auth/token", json={"username": email, "password": password, "otp": code})
    with app.app_context():
        rows = db.session.query(AuditRecord).filter_by(
            agent_reference=f"Practitioner/{admin_id}").all()
        events = sorted((r.subtype_code, r.outcome) for r in rows)
        stored = " ".join(str(vars(r)) for r in rows)
    assert events == sorted([("110122", "4"), ("otp-issued", "0"), ("otp-failed", "4"),
                             ("110122", "0")])
    assert password not in stored and code not in stored and "not-the-password" not in stored


def test_only_admins_read_the_audit_trail(client, as_role):
    for role in ("patient", "doctor", "pharmacist"):
        response = client.get("/fhir/AuditEvent", headers=as_role(role))
        assert response.status_code == 403, role
    assert client.get("/fhir/AuditEvent", headers=as_role("admin")).status_code == 200


def test_a_refused_token_is_audited_as_a_failed_authentication(app, client):
    client.get("/fhir/Patient", headers={"Authorization": "Bearer not-a-token"})
    with app.app_context():
        row = db.session.query(AuditRecord).one()
        assert (row.type_code, row.outcome, row.agent_reference) == ("110114", "4", None)
        assert "not-a-token" not in str(vars(row))


def test_audit_events_are_valid_fhir_and_can_be_read_by_id(app, client, as_role):
    headers = as_role("admin")
    events = _audit(client, headers)
    assert events
    one = client.get(f"/fhir/AuditEvent/{events[0].id}", headers=headers)
    assert one.status_code == 200
    parse_fhir(one.data, "AuditEvent")


def test_ui_pages_are_audited_with_their_patient(app, client):
    with app.app_context():
        scan_id, patient = make_scan("AI_ANALYZED")
        doctor, password = make_user("doctor")
        email, doctor_id, patient_id = doctor.email, doctor.id, patient.patient_id
    token = auth_headers(client, app, email, password, "doctor")["Authorization"][7:]
    browser = app.test_client()
    browser.set_cookie("access_token_cookie", token)
    assert browser.get(f"/doctor/scans/{scan_id}").status_code == 200
    with app.app_context():
        row = db.session.query(AuditRecord).filter_by(
            agent_reference=f"Practitioner/{doctor_id}", type_code="110110").one()
        assert row.patient_id == patient_id and f"ImagingStudy/{scan_id}" in row.entities


def test_an_audit_event_has_one_version_readable_by_vread_and_history(client, as_role):
    headers = as_role("admin")
    event = _audit(client, headers)[0]
    vread = client.get(f"/fhir/AuditEvent/{event.id}/_history/1", headers=headers)
    assert vread.status_code == 200, vread.get_data(as_text=True)
    assert parse_fhir(vread.data, "AuditEvent").id == event.id
    assert client.get(f"/fhir/AuditEvent/{event.id}/_history/2", headers=headers
                      ).status_code == 404
    history = parse_fhir(client.get(f"/fhir/AuditEvent/{event.id}/_history",
                                    headers=headers).data, "Bundle")
    assert history.total == 1


def test_recent_records_filter_by_agent_patient_type_and_time(app):
    with app.app_context():
        admin, doctor = make_user("admin")[0], make_user("doctor")[0]
        as_admin, as_doctor = actor_for(admin), actor_for(doctor)
        read = audit.Event(audit.PATIENT_RECORD, "R")
        old = audit.record(db.session, read, actor=as_doctor,
                           entities_by_patient={"p-1": ["Patient/p-1"]})[0]
        old.recorded = datetime(2025, 1, 1, tzinfo=UTC)
        audit.record(db.session, read, actor=as_doctor,
                     entities_by_patient={"p-2": ["Patient/p-2"]})
        audit.record(db.session, audit.Event(audit.USER_AUTHENTICATION, "E",
                                             subtype_code=audit.LOGIN), actor=as_admin)
        db.session.commit()

        def patients(**filters) -> list:
            return [r.patient_id for r in audit.recent_records(db.session, as_admin, **filters)]

        assert patients(patient="Patient/p-1") == ["p-1"]
        assert patients(agent=f"Practitioner/{doctor.id}") == ["p-2", "p-1"]
        assert patients(type_code=audit.USER_AUTHENTICATION) == [None]
        since = datetime.now(UTC) - timedelta(days=1)
        assert "p-1" not in patients(since=since) and "p-2" in patients(since=since)
        with pytest.raises(AccessDeniedError):
            audit.recent_records(db.session, as_doctor)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_that_left_a_change_unsaved_is_audited_without_saving_it(
        app, client, as_role, method):
    """A successful request's audit joins its open transaction (PostgreSQL) only when that
    holds no change: a change flushed but not committed is still rolled back."""
    from flask import jsonify

    from csss_fhir.security.authentication import current_actor

    def leaky_read():
        actor = current_actor()
        db.session.get(AuditRecord, "x")  # a query first: the change must be flushed
        db.session.add(AuditRecord(type_code="leak", action="R", outcome="0", entities=[]))
        db.session.flush()
        return jsonify({"resourceType": "Patient", "id": actor.user_id})

    app.add_url_rule("/fhir/Leaky/read", "fhir.leaky_read", leaky_read, methods=[method])
    headers = as_role("doctor")
    assert client.open("/fhir/Leaky/read", method=method, headers=headers).status_code == 200
    with app.app_context():
        assert db.session.query(AuditRecord).filter_by(type_code="leak").count() == 0
        audited = db.session.query(AuditRecord).filter_by(
            description=f"{method} /fhir/Leaky/read").all()
        assert len(audited) == 1


def test_a_read_is_audited_with_one_insert_in_its_own_transaction(app, client, as_role):
    """One INSERT per read; on PostgreSQL in the read's own transaction (no rollback and
    second BEGIN in between). SQLite ends the read first (audit._nothing_to_roll_back)."""
    from sqlalchemy import event

    headers = as_role("doctor")
    with app.app_context():
        scan_id, _ = make_scan("PENDING_AI")
        engine = db.engine
    statements: list[str] = []
    rollbacks: list[bool] = []

    def on_statement(connection, cursor, statement, *args) -> None:
        statements.append(statement.split()[0].upper())

    def on_rollback(connection) -> None:
        rollbacks.append(True)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "rollback", on_rollback)
    try:
        assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "rollback", on_rollback)
    assert statements.count("INSERT") == 1 and statements[-1] == "INSERT"
    assert len(rollbacks) == (1 if engine.dialect.name == "sqlite" else 0)
