"""$amend proposes a correction of a released DiagnosticReport; $approve-amendment (an admin
with a fresh second factor) releases it as a new version with a new PDF, e-mailed once; the
old version stays as it was."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import timedelta

import time_machine
from pypdf import PdfReader

from adapters.fhir.common import finding_concept
from csss_fhir.models import MailMessage, ReportAmendment, Scan, WorkflowEvent, db, utcnow
from tests.factories import (
    latest_code,
    login,
    make_scan,
    make_user,
    outbox_messages,
    parameters,
    parse_fhir,
)

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def released(app) -> tuple[str, str]:
    with app.app_context():
        scan_id, patient = make_scan("REPORT_READY")
        return db.session.get(Scan, scan_id).report.id, patient.email


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
                    .split())


def report_mails(app, report_id: str) -> list[MailMessage]:
    with app.app_context():
        return db.session.query(MailMessage).filter_by(report_id=report_id).all()


def test_an_amendment_is_pending_until_an_admin_approves_it_then_released_once(
        app, client, as_role):
    report_id, patient_email = released(app)
    doctor = as_role("doctor")
    before = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}", headers=doctor).data)
    old_pdf = client.get(f"/fhir/{before.presentedForm[0].url}", headers=doctor).data
    assert before.conclusionCode[0].text != "Viral pneumonia"

    proposed = client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                           headers={**doctor, **FHIR_JSON, "If-Match": 'W/"1"'},
                           json=parameters(note="Left effusion was missed.",
                                           finding="Viral_Pneumonia"))
    assert proposed.status_code == 202, proposed.data
    assert "pending" in parse_fhir(proposed.data, "OperationOutcome").issue[0].diagnostics
    unchanged = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}",
                                      headers=doctor).data)
    assert (unchanged.meta.versionId, unchanged.status) == ("1", "final")
    assert unchanged.conclusion == before.conclusion
    assert len(report_mails(app, report_id)) == 1  # the release only

    admin = as_role("admin")
    response = client.post(f"/fhir/DiagnosticReport/{report_id}/$approve-amendment",
                           headers={**admin, **FHIR_JSON})
    assert response.status_code == 200, response.data
    after = parse_fhir(response.data, "DiagnosticReport")
    assert after.status == "corrected" and after.meta.versionId == "2"
    assert after.conclusion.startswith("Viral Pneumonia. Amendment: Left effusion was missed.")
    assert after.conclusionCode[0].model_dump(mode="json", exclude_none=True) == \
        finding_concept("Viral_Pneumonia")
    form = after.presentedForm[0]
    assert form.url != before.presentedForm[0].url
    new_pdf = client.get(f"/fhir/{form.url}", headers=doctor).data
    assert form.size == len(new_pdf)
    assert hashlib.sha1(new_pdf).digest() == form.hash  # fhir.resources decodes base64
    text = pdf_text(new_pdf)
    assert "CORRECTED REPORT — version 2" in text and "Left effusion was missed." in text
    assert "Approved by" in text

    # Version 1 and its PDF are unchanged and still readable.
    old = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}/_history/1",
                                headers=doctor).data)
    assert old.status == "final" and old.presentedForm[0].url == before.presentedForm[0].url
    assert old.conclusion == before.conclusion
    assert client.get(f"/fhir/{old.presentedForm[0].url}", headers=doctor).data == old_pdf

    # One e-mail for the release and exactly one for the correction, carrying the new PDF.
    assert len(report_mails(app, report_id)) == 2
    sent = [m for m in outbox_messages(app) if m["To"] == patient_email]
    assert len(sent) == 2
    attachment = next(sent[-1].iter_attachments()).get_content()
    assert attachment == new_pdf

    again = client.post(f"/fhir/DiagnosticReport/{report_id}/$approve-amendment",
                        headers={**admin, **FHIR_JSON})
    assert again.status_code == 409
    assert len(report_mails(app, report_id)) == 2


def test_who_proposes_and_who_approves_is_recorded_as_provenance(app, client, as_role,
                                                                  new_user):
    report_id, _ = released(app)
    proposer = new_user("doctor")
    doctor = login(client, proposer)
    assert client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                       headers={**doctor, **FHIR_JSON},
                       json=parameters(note="Addendum: compare with the 2024 film.")
                       ).status_code == 202
    admin = as_role("admin")
    response = client.post(f"/fhir/DiagnosticReport/{report_id}/$approve-amendment",
                           headers={**admin, **FHIR_JSON})
    assert parse_fhir(response.data).status == "amended"
    with app.app_context():
        amendment = db.session.query(ReportAmendment).one()
        assert amendment.author_id == proposer.id and amendment.approved_by_id
        assert amendment.pending_report_id is None and amendment.report_version == 2
        steps = [e.step for e in db.session.query(WorkflowEvent).order_by(
            WorkflowEvent.created_at)]
        assert steps[-2:] == ["amend", "approve-amendment"]
        provenance_id = db.session.query(WorkflowEvent).filter_by(
            step="approve-amendment").one().id
    provenance = parse_fhir(client.get(f"/fhir/Provenance/{provenance_id}",
                                       headers=admin).data, "Provenance")
    assert provenance.agent[0].type.coding[0].code == "attester"
    # Version-specific: the approval released the report's second version.
    assert provenance.target[0].reference == f"DiagnosticReport/{report_id}/_history/2"


def test_only_doctors_propose_and_one_proposal_waits_at_a_time(app, client, as_role):
    report_id, _ = released(app)
    body = parameters(note="Addendum.")
    path = f"/fhir/DiagnosticReport/{report_id}/$amend"
    for role in ("patient", "pharmacist", "admin"):
        assert client.post(path, headers={**as_role(role), **FHIR_JSON},
                           json=body).status_code == 403
    doctor = {**as_role("doctor"), **FHIR_JSON}
    assert client.post(path, headers={**doctor, "If-Match": 'W/"7"'},
                       json=body).status_code == 412
    assert client.post(path, headers=doctor, json=parameters(note=" ")).status_code == 400
    assert client.post(path, headers=doctor, json=parameters(
        note="Corrected.", finding="uncertain")).status_code == 400
    assert client.post(path, headers=doctor, json=body).status_code == 202
    second = client.post(path, headers={**as_role("doctor"), **FHIR_JSON}, json=body)
    assert second.status_code == 409
    assert "waiting" in parse_fhir(second.data).issue[0].diagnostics
    assert client.post("/fhir/DiagnosticReport/nope/$amend", headers=doctor,
                       json=body).status_code == 404


def test_approving_an_amendment_needs_an_admin_with_a_fresh_second_factor(app, client,
                                                                          as_role):
    report_id, _ = released(app)
    assert client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                       headers={**as_role("doctor"), **FHIR_JSON},
                       json=parameters(note="Addendum.")).status_code == 202
    path = f"/fhir/DiagnosticReport/{report_id}/$approve-amendment"
    for role in ("doctor", "pharmacist", "patient"):
        assert client.post(path, headers=as_role(role)).status_code == 403
    with app.app_context():
        user, password = make_user("admin")
        email = user.email
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        client.post("/auth/otp", json={"username": email, "password": password})
        token = client.post("/auth/token", json={
            "username": email, "password": password, "otp": latest_code(app, email)}
        ).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", **FHIR_JSON}
        clock.shift(timedelta(minutes=10, seconds=1))
        stale = client.post(path, headers=headers)
        assert stale.status_code == 401
        assert parse_fhir(stale.data).issue[0].details.text == "otp-required"
        assert len(report_mails(app, report_id)) == 1
        client.post("/auth/otp", json={"username": email, "password": password})
        fresh = client.post(path, headers=headers,
                            json=parameters(otp=latest_code(app, email)))
        assert fresh.status_code == 200, fresh.data


def test_two_admins_approving_at_once_release_one_version(app, client, as_role):
    report_id, _ = released(app)
    assert client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                       headers={**as_role("doctor"), **FHIR_JSON},
                       json=parameters(note="Corrected.", finding="Normal")).status_code == 202
    admins = [as_role("admin"), as_role("admin")]
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def approve(headers: dict[str, str]) -> None:
        local = app.test_client()
        barrier.wait()
        statuses.append(local.post(f"/fhir/DiagnosticReport/{report_id}/$approve-amendment",
                                   headers={**headers, **FHIR_JSON}).status_code)

    threads = [threading.Thread(target=approve, args=(h,)) for h in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    assert len(report_mails(app, report_id)) == 2
    doctor = as_role("doctor")
    current = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}",
                                    headers=doctor).data)
    assert current.meta.versionId == "2"


def test_resending_the_first_mail_after_an_amendment_sends_the_current_pdf(app, client,
                                                                           as_role):
    from email import policy
    from email.parser import BytesParser

    from csss_fhir.extensions import services
    from csss_fhir.mail import deliveries, outbox

    report_id, _ = released(app)
    doctor = as_role("doctor")
    response = client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                           headers={**doctor, **FHIR_JSON, "If-Match": 'W/"1"'},
                           json=parameters(note="Left effusion was missed."))
    assert response.status_code == 202, response.data
    response = client.post(f"/fhir/DiagnosticReport/{report_id}/$approve-amendment",
                           headers=as_role("admin"))  # signed in with a fresh code
    assert response.status_code == 200, response.data
    current = client.get(f"/fhir/{parse_fhir(response.data).presentedForm[0].url}",
                         headers=doctor).data
    with app.app_context():
        first = (db.session.query(MailMessage).filter_by(report_id=report_id)
                 .order_by(MailMessage.created_at).first())
        outbox.deliver(db.session, services().mail, [first.id])
        copy = deliveries.resend(db.session, first.id, svc=services())
        raw = db.session.get(MailMessage, copy.mail_id).raw
    message = BytesParser(policy=policy.default).parsebytes(raw)
    [attachment] = [part for part in message.iter_attachments()]
    assert attachment.get_content() == current
