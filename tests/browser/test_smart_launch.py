"""An EHR launches a SMART app in a real browser: SMART's own `fhirclient` library reads our
CapabilityStatement, sends the signed-in doctor to /auth/authorize (PKCE S256), and redeems
the code the doctor's "Allow" sends back."""

from __future__ import annotations

import pytest
import requests
from fhirclient.client import FHIRClient
from playwright.sync_api import expect

from csss_fhir.models import Patient, db
from csss_fhir.security import clients
from tests import factories
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.slow

# The app's page never loads: the browser's request for it is answered by the test.
REDIRECT = "https://viewer.example/callback"


def test_an_ehr_launch_opens_a_fhirclient_app_for_the_patient(chromium, site_factory):
    site = site_factory()
    doctor = factories.make_login(site.app, "doctor", name="Dr Ines Weber")
    with site.app.app_context():
        scan_id, patient = factories.make_scan("AI_ANALYZED")
        patient_id = patient.patient_id
        patient_name = db.session.get(Patient, patient_id).display_name
        app_id = clients.create_client(db.session, "Chest Viewer", "launch user/*.rs",
                                       redirect_uris=(REDIRECT,), public=True).client_id

    launch = requests.post(site("/auth/launch"), json={"patient": patient_id},
                           headers=factories.login(site, doctor), timeout=30)
    assert launch.status_code == 201, launch.text
    app = FHIRClient(settings={"app_id": app_id, "api_base": site.fhir(""),
                               "redirect_uri": REDIRECT, "scope": "launch user/*.rs",
                               "launch_token": launch.json()["launch"]})
    authorize_url = app.authorize_url
    assert authorize_url.startswith(site("/auth/authorize?"))

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.route(f"{REDIRECT}**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<h1>Chest Viewer</h1>"))
    sign_in(page, site, doctor)
    page.goto(authorize_url)
    expect(page.locator("h1")).to_have_text("Allow Chest Viewer to read records as you?")
    expect(page.locator("main")).to_contain_text("Dr Ines Weber")
    expect(page.locator("main")).to_contain_text("cannot verify, prescribe, approve")
    expect(page.locator("main")).to_contain_text(f"Which patient's record is open: "
                                                 f"{patient_name}")
    screenshot(page, "smart-launch-approval")
    page.click("button[value=approve]")
    page.wait_for_url(f"{REDIRECT}**")
    callback = page.url
    context.close()

    app.handle_callback(callback)
    assert app.patient_id == patient_id
    assert app.server.auth.access_token
    study = app.server.request_json(f"ImagingStudy/{scan_id}")
    assert study["resourceType"] == "ImagingStudy" and study["id"] == scan_id
    factories.parse_fhir(requests.get(site.fhir(f"Patient/{patient_id}"), timeout=30, headers={
        "Authorization": f"Bearer {app.server.auth.access_token}"}).content, "Patient")


def test_a_standalone_launch_by_staff_picks_the_patient_in_the_browser(chromium, site_factory):
    site = site_factory()
    doctor = factories.make_login(site.app, "doctor", name="Dr Ines Weber")
    with site.app.app_context():
        scan_id, patient = factories.make_scan("AI_ANALYZED")
        factories.make_scan("AI_ANALYZED")  # another patient, not picked
        patient_id = patient.patient_id
        record = db.session.get(Patient, patient_id)
        patient_name, family = record.display_name, record.family_name
        app_id = clients.create_client(db.session, "Chest Writer",
                                       "launch/patient user/*.rs user/Observation.c",
                                       redirect_uris=(REDIRECT,), public=True).client_id

    # Standalone: no launch value; fhirclient asks for launch/patient.
    app = FHIRClient(settings={"app_id": app_id, "api_base": site.fhir(""),
                               "redirect_uri": REDIRECT,
                               "scope": "launch/patient user/*.rs user/Observation.c"})
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.route(f"{REDIRECT}**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<h1>Chest Writer</h1>"))
    sign_in(page, site, doctor)
    page.goto(app.authorize_url)
    expect(page.locator("h1")).to_have_text("Which patient should Chest Writer open?")
    page.fill("#patient_search", family)
    page.click("button.primary")
    choice = page.locator(f"button[name=patient][value='{patient_id}']")
    expect(choice).to_contain_text(patient_name)
    screenshot(page, "smart-standalone-patient-picker")
    choice.click()
    expect(page.locator("h1")).to_have_text("Allow Chest Writer to read and change records "
                                            "as you?")
    expect(page.locator("main")).to_contain_text(f"Which patient's record is open: "
                                                 f"{patient_name}")
    expect(page.locator("main")).to_contain_text("Create Observation records")
    page.click("button[value=approve]")
    page.wait_for_url(f"{REDIRECT}**")
    callback = page.url
    context.close()

    app.handle_callback(callback)
    assert app.patient_id == patient_id
    # The app writes what its scope and the doctor's role allow, and nothing else.
    bearer = {"Authorization": f"Bearer {app.server.auth.access_token}"}
    verified = requests.post(site.fhir(f"ImagingStudy/{scan_id}/$verify"), headers=bearer,
                             json=factories.parameters(note="Agree.", agree=True), timeout=30)
    assert verified.status_code == 201, verified.text
    refused = requests.post(site.fhir("Patient"), headers=bearer, timeout=30,
                            json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert refused.status_code == 403
    assert "user/Patient.c" in factories.parse_fhir(refused.content, "OperationOutcome"
                                                    ).issue[0].diagnostics
