"""The whole chain over HTTP against the real app on loopback, with a real SMTP server.

upload -> classify -> verify -> prescribe -> pharmacy review -> OTP login -> approve ->
the patient downloads the PDF, and the e-mail with the same PDF arrives.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from datetime import date

import requests
from pypdf import PdfReader

from csss_fhir.reports.content import AI_NOTICE
from tests.factories import make_login, medication_request, parameters, parse_fhir, xray_png

FHIR_JSON = {"Content-Type": "application/fhir+json"}


class Client:
    """A FHIR client for one user: every JSON body it receives is parsed as FHIR."""

    def __init__(self, server, token: str | None = None) -> None:
        self.server = server
        self.token = token

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        response = requests.request(method, self.server.fhir(path), timeout=30, **kwargs)
        if response.headers.get("Content-Type", "").startswith("application/fhir+json"):
            response.resource = parse_fhir(response.content)
        return response

    def operation(self, study_id: str, name: str, **params) -> requests.Response:
        body = parameters(**params) if params else None
        return self.request("POST", f"ImagingStudy/{study_id}/${name}", json=body,
                            headers=FHIR_JSON)

    def state(self, study_id: str) -> str:
        bundle = self.request("GET", f"Task?focus=ImagingStudy/{study_id}").resource
        assert bundle.total == 1
        return bundle.entry[0].resource.businessStatus.text


def login(server, email: str, password: str, otp: str | None = None) -> requests.Response:
    body = {"username": email, "password": password}
    if otp is not None:
        body["otp"] = otp
    return requests.post(f"{server.url}/auth/token", json=body, timeout=30)


def users(server) -> dict[str, tuple[str, str, str | None]]:
    """One user per role: role -> (email, password, patient id)."""
    patient = {"name": "Þórdís Ñúñez-Åkesson", "birth_date": date(1990, 5, 17),
               "gender": "female"}
    made = {role: make_login(server.app, role, **(patient if role == "patient" else {}))
            for role in ("patient", "doctor", "pharmacist", "admin")}
    return {role: (user.email, user.password, user.patient_id) for role, user in made.items()}


def code_from(message) -> str:
    return re.search(r"\b(\d{6})\b", message.get_body(("plain",)).get_content()).group(1)


def test_whole_chain_over_http(live_server, smtp_server):
    people = users(live_server)
    tokens = {}
    for role in ("patient", "doctor", "pharmacist"):
        email, password, _ = people[role]
        response = login(live_server, email, password)
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer" and response.json()["role"] == role
        tokens[role] = response.json()["access_token"]
    patient, doctor, pharmacist = (Client(live_server, tokens[r])
                                   for r in ("patient", "doctor", "pharmacist"))
    patient_id = people["patient"][2]

    # Upload as the patient.
    upload = patient.request("POST", "ImagingStudy/$upload",
                             files={"file": ("chest.png", xray_png(), "image/png")},
                             data={"description": "PA chest"})
    assert upload.status_code == 201
    study = upload.resource
    assert study.get_resource_type() == "ImagingStudy" and study.status == "registered"
    assert study.subject.reference == f"Patient/{patient_id}"
    study_id = study.id
    # The AI job ran after the upload committed (inline in tests; a worker in production).
    assert patient.state(study_id) == "AI_ANALYZED"

    # Every later step is refused before its state comes (409), and nothing changes.
    assert pharmacist.operation(study_id, "pharmacy-review", note="early").status_code == 409
    early_rx = pharmacist.request("POST", "MedicationRequest", headers=FHIR_JSON,
                                  json=medication_request(patient_id, study_id))
    assert early_rx.status_code == 409
    assert early_rx.resource.get_resource_type() == "OperationOutcome"
    # Wrong roles are 403 whatever the state.
    assert patient.operation(study_id, "classify").status_code == 403
    assert pharmacist.operation(study_id, "classify").status_code == 403
    assert patient.state(study_id) == "AI_ANALYZED"

    # AI again, as the doctor: a re-run whose proposal supersedes the job's.
    classified = doctor.operation(study_id, "classify")
    assert classified.status_code == 201
    ai = classified.resource
    assert ai.status == "preliminary" and ai.device.reference.startswith("Device/")
    probabilities = {c.code.text: c.valueQuantity.value for c in ai.component}
    assert len(probabilities) >= 2 and abs(sum(probabilities.values()) - 1) < 1e-3
    assert doctor.state(study_id) == "AI_ANALYZED"
    device = doctor.request("GET", ai.device.reference)
    assert device.status_code == 200 and device.resource.get_resource_type() == "Device"
    # The patient never sees the preliminary AI result.
    assert patient.request("GET", f"Observation/{ai.id}").status_code == 403
    assert patient.operation(study_id, "verify", note="x").status_code == 403

    # Verify, as the doctor.
    assert doctor.operation(study_id, "pharmacy-review", note="x").status_code == 403
    verified = doctor.operation(study_id, "verify", note="Consolidation right lower lobe.",
                                agree=True)
    assert verified.status_code == 201
    review = verified.resource
    assert review.status == "final"
    assert f"Observation/{ai.id}" in [d.reference for d in review.derivedFrom]
    assert doctor.state(study_id) == "DOCTOR_VERIFIED"
    assert doctor.operation(study_id, "verify", note="again").status_code == 409
    assert doctor.operation(study_id, "classify").status_code == 409  # part of the record
    provenance = doctor.request("GET", "Provenance?scan-patient=" + patient_id).resource
    steps = sorted(e.resource.activity.text.split(":")[0] for e in provenance.entry)
    assert steps == ["classify", "classify", "upload", "verify"]  # the job's, the doctor's

    # Pharmacist: prescribe (doctor may not), then complete the review.
    assert doctor.request("POST", "MedicationRequest", headers=FHIR_JSON,
                          json=medication_request(patient_id, study_id)).status_code == 403
    prescription = pharmacist.request("POST", "MedicationRequest", headers=FHIR_JSON,
                                      json=medication_request(patient_id, study_id))
    assert prescription.status_code == 201
    assert prescription.resource.dosageInstruction[0].route.text == "oral"
    assert prescription.headers["Location"].endswith("/_history/1")
    reviewed = pharmacist.operation(study_id, "pharmacy-review", note="No interactions.")
    assert reviewed.status_code == 200
    assert reviewed.resource.get_resource_type() == "Task"
    assert reviewed.resource.businessStatus.text == "PHARMACIST_COMPLETED"

    # Admin: password alone is not enough; the e-mailed code completes the login.
    email, password, _ = people["admin"]
    no_code = login(live_server, email, password)
    assert no_code.status_code == 401
    assert no_code.json()["issue"][0]["details"]["text"] == "otp-required"
    assert requests.post(f"{live_server.url}/auth/otp", timeout=30,
                         json={"username": email, "password": password}).status_code == 202
    otp_mail = smtp_server.to(email)[-1]
    assert "10 minutes" in otp_mail.get_body(("plain",)).get_content()
    code = code_from(otp_mail)
    wrong = login(live_server, email, password, otp="000000" if code != "000000" else "111111")
    assert wrong.json()["issue"][0]["details"]["text"] == "otp-invalid"
    admin_login = login(live_server, email, password, otp=code)
    assert admin_login.status_code == 200
    assert login(live_server, email, password, otp=code).status_code == 401  # single use
    admin = Client(live_server, admin_login.json()["access_token"])

    assert doctor.operation(study_id, "approve").status_code == 403
    approved = admin.operation(study_id, "approve")
    assert approved.status_code == 201
    report = approved.resource
    assert report.get_resource_type() == "DiagnosticReport" and report.status == "final"
    assert sorted(r.reference for r in report.result) == sorted(
        [f"Observation/{ai.id}", f"Observation/{review.id}"])
    form = report.presentedForm[0]
    assert form.contentType == "application/pdf"
    assert admin.state(study_id) == "REPORT_READY"
    assert admin.operation(study_id, "approve").status_code == 409

    # The patient reads the released report and downloads its PDF.
    own_report = patient.request("GET", f"DiagnosticReport/{report.id}")
    assert own_report.status_code == 200
    pdf = patient.request("GET", form.url, headers={"Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert len(pdf.content) == form.size
    wire_hash = approved.json()["presentedForm"][0]["hash"]
    assert base64.b64decode(wire_hash) == hashlib.sha1(pdf.content).digest()
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert " ".join(AI_NOTICE.split()) in " ".join(text.split())
    assert "Þórdís Ñúñez-Åkesson" in text

    # The e-mail reached the SMTP server with the same PDF attached, no finding in subject.
    patient_email = people["patient"][0]
    mails = smtp_server.to(patient_email)
    assert len(mails) == 1
    attachment = next(mails[0].iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf.content
    assert "Normal" not in mails[0]["Subject"] and "COVID" not in mails[0]["Subject"]
