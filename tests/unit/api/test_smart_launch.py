"""SMART App Launch end to end through the test client: an app sends the signed-in user to
/auth/authorize, the user approves, the app redeems the code with its PKCE verifier."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from csss_fhir.cli import cli
from tests import factories
from tests.factories import parse_fhir

REDIRECT = "http://localhost:8765/callback"
APP_SCOPES = "launch launch/patient user/*.rs patient/*.rs"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def _register_app(runner, *, public: bool = True, scopes: str = APP_SCOPES) -> tuple[str, str]:
    args = ["clients", "create", f"Viewer {secrets.token_hex(4)}", "--scopes", scopes,
            "--redirect-uri", REDIRECT]
    result = runner.invoke(cli, args=[*args, "--public"] if public else args)
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    return lines["client_id"], lines.get("client_secret", "")


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _sign_in(client, user: factories.UserLogin) -> None:
    token = _csrf(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": user.password,
                                           "csrf_token": token})
    assert response.status_code == 302


def _authorize_query(client, client_id: str, challenge: str, scope: str, **extra) -> str:
    config = client.get("/.well-known/smart-configuration").get_json()
    return urlencode({"response_type": "code", "client_id": client_id,
                      "redirect_uri": REDIRECT, "scope": scope, "state": "st-42",
                      "aud": config["issuer"], "code_challenge": challenge,
                      "code_challenge_method": "S256", **extra})


def _approve(client, query: str, decision: str = "approve") -> dict[str, list[str]]:
    page = client.get(f"/auth/authorize?{query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    assert "Allow" in html
    # The form's redirect ends at the app: the page's policy must let the browser go there.
    assert "form-action 'self' http://localhost:8765;" in \
        page.headers["Content-Security-Policy"]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html))
    response = client.post("/auth/authorize", data={**fields, "decision": decision})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def _redeem(client, app_id: str, code: str, verifier: str, **extra):
    return client.post("/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": app_id, **extra})


def test_ehr_launch_gives_the_doctor_a_read_only_token_for_the_patient(app, client, runner,
                                                                      new_user):
    with app.app_context():
        scan_id, patient = factories.make_scan("AI_ANALYZED")
        patient_id = patient.patient_id
    doctor = new_user("doctor")
    client_id, _ = _register_app(runner)
    launch = client.post("/auth/launch", json={"patient": patient_id},
                         headers=factories.login(client, doctor))
    assert launch.status_code == 201, launch.get_data(as_text=True)
    _sign_in(client, doctor)
    verifier, challenge = _pkce()
    query = _authorize_query(client, client_id, challenge, APP_SCOPES + " openid",
                             launch=launch.get_json()["launch"])
    answer = _approve(client, query)
    assert answer["state"] == ["st-42"]
    token = _redeem(client, client_id, answer["code"][0], verifier)
    assert token.status_code == 200, token.get_data(as_text=True)
    body = token.get_json()
    # patient/ scopes are for patient users; openid is not offered: both left out.
    assert body["scope"] == "launch launch/patient user/*.rs"
    assert body["patient"] == patient_id and body["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    read = client.get(f"/fhir/Patient/{patient_id}", headers=headers)
    assert read.status_code == 200
    parse_fhir(read.data, "Patient")
    assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 200
    write = client.post("/fhir/Patient", headers=headers,
                        json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert write.status_code == 403
    parse_fhir(write.data, "OperationOutcome")
    again = _redeem(client, client_id, answer["code"][0], verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_standalone_launch_of_a_patient_names_their_own_record(app, client, runner, new_user):
    patient = new_user("patient")
    client_id, _ = _register_app(runner, scopes="launch/patient patient/*.rs")
    _sign_in(client, patient)
    verifier, challenge = _pkce()
    answer = _approve(client, _authorize_query(client, client_id, challenge,
                                               "launch/patient patient/Patient.rs"))
    body = _redeem(client, client_id, answer["code"][0], verifier).get_json()
    assert body["patient"] == patient.patient_id
    assert body["scope"] == "launch/patient patient/Patient.rs"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(f"/fhir/Patient/{patient.patient_id}", headers=headers).status_code == 200
    assert client.get("/fhir/ImagingStudy", headers=headers).status_code == 403


def test_a_signed_out_user_signs_in_and_comes_back(client, runner, new_user):
    doctor = new_user("doctor")
    client_id, _ = _register_app(runner)
    _, challenge = _pkce()
    query = _authorize_query(client, client_id, challenge, "user/*.rs")
    first = client.get(f"/auth/authorize?{query}")
    assert first.status_code == 302 and "/login?next=" in first.headers["Location"]
    login_page = client.get(first.headers["Location"]).get_data(as_text=True)
    signed = client.post("/login", data={"email": doctor.email, "password": doctor.password,
                                         "csrf_token": _csrf(login_page),
                                         "next": f"/auth/authorize?{query}"})
    assert signed.headers["Location"].startswith("/auth/authorize?")


@pytest.mark.parametrize("field, value, error", [
    ("code_verifier", "x" * 50, "invalid_grant"),
    ("redirect_uri", "http://localhost:8765/other", "invalid_grant"),
    ("client_id", "someone-else", "invalid_client"),
])
def test_code_exchange_refuses_a_wrong_verifier_redirect_or_client(client, runner, new_user,
                                                                   field, value, error):
    doctor = new_user("doctor")
    client_id, _ = _register_app(runner)
    _sign_in(client, doctor)
    verifier, challenge = _pkce()
    answer = _approve(client, _authorize_query(client, client_id, challenge, "user/*.rs"))
    response = _redeem(client, client_id, answer["code"][0], verifier, **{field: value})
    assert response.get_json()["error"] == error


def test_a_confidential_app_must_authenticate(client, runner, new_user):
    doctor = new_user("doctor")
    client_id, secret = _register_app(runner, public=False)
    assert secret
    _sign_in(client, doctor)
    verifier, challenge = _pkce()
    answer = _approve(client, _authorize_query(client, client_id, challenge, "user/*.rs"))
    assert _redeem(client, client_id, answer["code"][0], verifier).status_code == 401
    answer = _approve(client, _authorize_query(client, client_id, challenge, "user/*.rs"))
    ok = _redeem(client, client_id, answer["code"][0], verifier, client_secret=secret)
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_refusals_go_back_to_the_app_unless_the_redirect_is_unknown(client, runner,
                                                                    new_user):
    doctor = new_user("doctor")
    client_id, _ = _register_app(runner)
    _sign_in(client, doctor)
    unknown = client.get("/auth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id,
        "redirect_uri": "https://attacker.example/cb"}))
    assert unknown.status_code == 400
    no_pkce = client.get("/auth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": "user/*.rs", "state": "s1"}))
    query = parse_qs(urlsplit(no_pkce.headers["Location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]
    _, challenge = _pkce()
    forged = client.post("/auth/authorize", data={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": "user/*.rs", "code_challenge": challenge, "code_challenge_method": "S256",
        "decision": "approve"})  # no csrf_token: another site's form
    assert forged.status_code == 302 and "/login" in forged.headers["Location"]
    denied = _approve(client, _authorize_query(client, client_id, challenge, "user/*.rs"),
                      decision="deny")
    assert denied["error"] == ["access_denied"]
    stolen = client.get("/auth/authorize?" + _authorize_query(
        client, client_id, challenge, "launch user/*.rs", launch="not-a-launch"))
    assert stolen.status_code == 302
    assert parse_qs(urlsplit(stolen.headers["Location"]).query)["error"] == ["invalid_request"]


def test_an_app_cannot_use_client_credentials(client, runner):
    client_id, secret = _register_app(runner, public=False)
    response = client.post("/auth/token", data={"grant_type": "client_credentials",
                                                "client_id": client_id,
                                                "client_secret": secret})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_configuration_and_capability_name_the_authorize_endpoint(client):
    config = client.get("/.well-known/smart-configuration").get_json()
    assert config["authorization_endpoint"].endswith("/auth/authorize")
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-ehr", "launch-standalone", "client-public"} <= set(config["capabilities"])
    capability = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    uris = {e.url: e.valueUri for e in capability.rest[0].security.extension[0].extension}
    assert uris == {"token": config["token_endpoint"],
                    "authorize": config["authorization_endpoint"]}


def test_only_staff_launch_apps_and_only_for_a_known_patient(client, new_user):
    patient = new_user("patient")
    refused = client.post("/auth/launch", json={"patient": patient.patient_id},
                          headers=factories.login(client, patient))
    assert refused.status_code == 403
    parse_fhir(refused.data, "OperationOutcome")
    doctor = factories.login(client, new_user("doctor"))
    unknown = client.post("/auth/launch", json={"patient": "no-such-patient"}, headers=doctor)
    assert unknown.status_code == 400


def _launched_token(client, runner, user, scopes: str, registered: str, **extra) -> dict:
    client_id, _ = _register_app(runner, scopes=registered)
    _sign_in(client, user)
    verifier, challenge = _pkce()
    answer = _approve(client, _authorize_query(client, client_id, challenge, scopes, **extra))
    token = _redeem(client, client_id, answer["code"][0], verifier)
    assert token.status_code == 200, token.get_data(as_text=True)
    return token.get_json()


def test_an_app_writes_what_both_its_scope_and_the_role_allow(app, client, runner, new_user):
    with app.app_context():
        first, _ = factories.make_scan("AI_ANALYZED")
        second, _ = factories.make_scan("AI_ANALYZED")
    doctor = new_user("doctor")
    # A doctor's role never prescribes: user/MedicationRequest.c is not granted, and the
    # app did not ask for Patient.c, which the role has.
    body = _launched_token(client, runner, doctor,
                           "user/*.rs user/Observation.cu user/MedicationRequest.c",
                           registered="launch user/*.cruds")
    assert body["scope"] == "user/*.rs user/Observation.c"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    verified = client.post(f"/fhir/ImagingStudy/{first}/$verify", headers=headers,
                           json=factories.parameters(note="Agree.", agree=True))
    assert verified.status_code == 201, verified.get_data(as_text=True)
    assert parse_fhir(verified.data, "Observation").status == "final"
    # Creating a Patient: the role may, the app's scope does not (403 naming the scope).
    refused = client.post("/fhir/Patient", headers=headers,
                          json={"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert refused.status_code == 403
    outcome = parse_fhir(refused.data, "OperationOutcome")
    assert "user/Patient.c" in outcome.issue[0].diagnostics
    # user/Observation.u: $verify creates the doctor's Observation, and no step of a
    # doctor's updates one, so there is nothing to grant.
    client_id, _ = _register_app(runner, scopes="user/*.cruds")
    _, challenge = _pkce()
    answer = _approve(client, _authorize_query(client, client_id, challenge,
                                               "user/Observation.u"))
    assert answer["error"] == ["invalid_scope"]
    reader = _launched_token(client, runner, doctor, "user/*.rs",
                             registered="user/*.cruds")
    blocked = client.post(f"/fhir/ImagingStudy/{second}/$verify",
                          headers={"Authorization": f"Bearer {reader['access_token']}"},
                          json=factories.parameters(note="Agree.", agree=True))
    assert blocked.status_code == 403
    assert "user/<Type>.c" in parse_fhir(blocked.data, "OperationOutcome").issue[0].diagnostics


def test_a_scope_never_gives_more_than_the_role(app, client, runner, new_user):
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    pharmacist = new_user("pharmacist")
    body = _launched_token(client, runner, pharmacist, "user/*.cruds",
                           registered="user/*.cruds")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    # The pharmacist's app may prescribe, but verifying stays the doctor's step.
    verify = client.post(f"/fhir/ImagingStudy/{scan_id}/$verify", headers=headers,
                         json=factories.parameters(note="Agree.", agree=True))
    assert verify.status_code == 403
    assert "pharmacist role may not verify" in verify.get_data(as_text=True)
    # And nothing outside /fhir: an app never mints launch values.
    launch = client.post("/auth/launch", json={"patient": "x"}, headers=headers)
    assert launch.status_code == 403


def test_a_staff_standalone_launch_picks_the_patient_first(app, client, runner, new_user):
    with app.app_context():
        scan_id, patient = factories.make_scan("AI_ANALYZED")
        from csss_fhir.models import Patient, db

        record = db.session.get(Patient, patient.patient_id)
        family, mrn = record.family_name, record.mrn
    doctor = new_user("doctor")
    client_id, _ = _register_app(runner, scopes="launch/patient user/*.rs")
    _sign_in(client, doctor)
    verifier, challenge = _pkce()
    query = _authorize_query(client, client_id, challenge, "launch/patient user/*.rs")
    picker = client.get(f"/auth/authorize?{query}").get_data(as_text=True)
    assert "Which patient should" in picker and "Allow" not in picker
    for text in (family, mrn):
        if not text:
            continue
        results = client.get(f"/auth/authorize?{query}&patient_search={text}"
                             ).get_data(as_text=True)
        assert f'name="patient" value="{patient.patient_id}"' in results, text
    empty = client.get(f"/auth/authorize?{query}&patient_search=Zzyzxq").get_data(as_text=True)
    assert "No patient you may see" in empty
    answer = _approve(client, f"{query}&patient={patient.patient_id}")
    body = _redeem(client, client_id, answer["code"][0], verifier).get_json()
    assert body["patient"] == patient.patient_id
    assert body["scope"] == "launch/patient user/*.rs"
    forged = client.get(f"/auth/authorize?{query}&patient=no-such-patient")
    assert parse_qs(urlsplit(forged.headers["Location"]).query)["error"] == \
        ["invalid_request"]
