"""No log line carries a password, one-time code, token, e-mail address or patient name:
the whole chain over HTTP (real server, real SMTP), every log record captured and scanned."""

from __future__ import annotations

import io
import logging
import re

import requests

from tests.factories import login, make_login, medication_request, parameters, xray_png

TEST_SIDE = ("urllib3", "mail.log", "requests")


def test_no_secret_or_name_reaches_the_logs(live_server, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    app = live_server.app
    people = {role: make_login(app, role, **({"name": "Zenobia Quillfeather"}
                                             if role == "patient" else {}))
              for role in ("patient", "doctor", "pharmacist", "admin")}
    patient_id = people["patient"].patient_id
    secrets = {"Zenobia", "Quillfeather"}
    for person in people.values():
        secrets |= {person.email, person.password}

    def code_by_mail(email: str) -> str:
        code = re.search(r"\b(\d{6})\b", smtp_server.to(email)[-1].get_body(
            ("plain",)).get_content()).group(1)
        secrets.add(code)
        return code

    def headers(role: str) -> dict[str, str]:
        found = login(live_server, people[role], one_time_code=code_by_mail)
        secrets.add(found["Authorization"].removeprefix("Bearer "))
        return found

    patient = headers("patient")
    upload = requests.post(live_server.fhir("ImagingStudy/$upload"), headers=patient,
                           files={"file": ("Quillfeather-chest.png", io.BytesIO(xray_png()),
                                           "image/png")}, timeout=60)
    assert upload.status_code == 201, upload.text
    study = upload.json()["id"]
    doctor = headers("doctor")
    assert requests.post(live_server.fhir(f"ImagingStudy/{study}/$classify"), headers=doctor,
                         timeout=60).status_code == 201
    assert requests.post(live_server.fhir(f"ImagingStudy/{study}/$verify"), headers=doctor,
                         json=parameters(note="Quillfeather: clear lungs.", agree=False,
                                         finding="Normal"), timeout=60).status_code == 201
    assert requests.get(live_server.fhir("Patient?name=Quillfeather"), headers=doctor,
                        timeout=30).status_code == 200
    pharmacist = headers("pharmacist")
    assert requests.post(live_server.fhir("MedicationRequest"), headers=pharmacist,
                         json=medication_request(patient_id, study), timeout=30
                         ).status_code == 201
    assert requests.post(live_server.fhir(f"ImagingStudy/{study}/$pharmacy-review"),
                         headers=pharmacist, json=parameters(note="Checked."), timeout=30
                         ).status_code == 200
    admin = headers("admin")
    admin_email, admin_password = people["admin"].email, people["admin"].password
    approve = requests.post(live_server.fhir(f"ImagingStudy/{study}/$approve"),
                            headers=admin, timeout=60)
    assert approve.status_code == 201, approve.text
    # Mistakes people make: a password typed as the username, a wrong code, a bad token.
    requests.post(f"{live_server.url}/auth/token", timeout=30, json={
        "username": admin_password, "password": admin_email})
    requests.post(f"{live_server.url}/auth/token", timeout=30, json={
        "username": admin_email, "password": admin_password, "otp": "12345x"})
    requests.get(live_server.fhir("Patient"), timeout=30,
                 headers={"Authorization": f"{admin['Authorization']}x"})
    requests.post(f"{live_server.url}/auth/logout", headers=patient, timeout=30)

    # The test's own HTTP client and SMTP server log what they send and receive; they are
    # not the service.
    records = [r for r in caplog.records if not r.name.startswith(TEST_SIDE)]
    assert any(r.name == "werkzeug" for r in records)  # the access log was captured
    assert any(r.name.startswith("csss_fhir") for r in records)
    leaks = []
    for record in records:
        text = f"{record.getMessage()} {record.__dict__}"
        found = sorted(s for s in secrets if s in text)
        if found:
            leaks.append(f"{record.name}: {record.getMessage()[:120]!r} has {found}")
    assert not leaks, "\n".join(leaks)
