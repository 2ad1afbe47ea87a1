"""$amend on a released DiagnosticReport: a new version and PDF; the old one stays as it was."""

from __future__ import annotations

import hashlib
import io

from pypdf import PdfReader

from csss_fhir.models import MailMessage, Scan, db
from tests.factories import make_scan, parameters, parse_fhir

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def released(app) -> tuple[str, str]:
    with app.app_context():
        scan_id, patient = make_scan("REPORT_READY")
        return db.session.get(Scan, scan_id).report.id, patient.email


def test_a_doctor_corrects_a_report_as_a_new_version_with_a_new_pdf(app, client, as_role):
    report_id, patient_email = released(app)
    doctor = as_role("doctor")
    before = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}", headers=doctor).data)
    old_pdf = client.get(f"/fhir/{before.presentedForm[0].url}", headers=doctor).data

    response = client.post(f"/fhir/DiagnosticReport/{report_id}/$amend",
                           headers={**doctor, **FHIR_JSON, "If-Match": 'W/"1"'},
                           json=parameters(note="Left effusion was missed.",
                                           finding="Viral_Pneumonia"))
    assert response.status_code == 200, response.data
    after = parse_fhir(response.data, "DiagnosticReport")
    assert after.status == "corrected" and after.meta.versionId == "2"
    form = after.presentedForm[0]
    assert form.url != before.presentedForm[0].url
    new_pdf = client.get(f"/fhir/{form.url}", headers=doctor).data
    assert form.size == len(new_pdf)
    assert hashlib.sha1(new_pdf).digest() == form.hash  # fhir.resources decodes base64
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(new_pdf)).pages)
                    .split())
    assert "CORRECTED REPORT — version 2" in text and "Left effusion was missed." in text

    # Version 1 and its PDF are unchanged.
    old = parse_fhir(client.get(f"/fhir/DiagnosticReport/{report_id}/_history/1",
                                headers=doctor).data)
    assert old.status == "final" and old.presentedForm[0].url == before.presentedForm[0].url
    assert client.get(f"/fhir/{old.presentedForm[0].url}", headers=doctor).data == old_pdf
    with app.app_context():
        mails = db.session.query(MailMessage).filter_by(report_id=report_id).all()
        assert len(mails) == 2  # the release and the correction


def test_only_doctors_and_admins_amend_and_if_match_guards_the_version(app, client, as_role):
    report_id, _ = released(app)
    body = parameters(note="Addendum.")
    path = f"/fhir/DiagnosticReport/{report_id}/$amend"
    for role in ("patient", "pharmacist"):
        assert client.post(path, headers={**as_role(role), **FHIR_JSON},
                           json=body).status_code == 403
    doctor = {**as_role("doctor"), **FHIR_JSON}
    assert client.post(path, headers={**doctor, "If-Match": 'W/"7"'},
                       json=body).status_code == 412
    assert client.post(path, headers=doctor, json=parameters(note=" ")).status_code == 400
    assert client.post(path, headers=doctor, json=parameters(
        note="Corrected.", finding="uncertain")).status_code == 400
    response = client.post(path, headers=doctor, json=body)
    assert parse_fhir(response.data).status == "amended"
    assert client.post("/fhir/DiagnosticReport/nope/$amend", headers=doctor,
                       json=body).status_code == 404


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
