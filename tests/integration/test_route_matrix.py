"""Every route x every method x every kind of caller, generated from the app's URL map.

A route that has no rule here fails the suite: whoever adds a route says who may call it.
Expectations are about the gate, not the business outcome: "ok" means the caller got past
authentication and authorisation (no 401/403, never a 500; a 409 from the workflow is fine),
"denied" a 403 (or 404, where a row is hidden from the caller), "login" a 401 from the API
or a redirect to the sign-in page from the UI.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from flask_jwt_extended import get_csrf_token

from csss_fhir.models import Report, db
from csss_fhir.security import clients
from tests.factories import auth_headers, make_scan, make_user, parameters, xray_png

HUMANS = ("patient", "doctor", "pharmacist", "admin")
SYSTEMS = ("system-read", "system-write")
CALLERS = ("anonymous", *HUMANS, *SYSTEMS)
STAFF = {"doctor", "pharmacist", "admin"}
AUTHENTICATED = set(HUMANS) | set(SYSTEMS)
READERS = set(HUMANS) | {"system-read"}


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]  # callers that get past the gate
    public: bool = False  # anonymous too
    ui: bool = False  # a browser page: humans with the cookie; systems are not tried


def api(*allowed: str) -> Rule:
    return Rule(frozenset(allowed))


def page(*allowed: str) -> Rule:
    return Rule(frozenset(allowed), ui=True)


PUBLIC = Rule(frozenset(CALLERS), public=True)
PUBLIC_PAGE = Rule(frozenset(CALLERS), public=True, ui=True)

RULES: dict[tuple[str, str], Rule] = {
    ("/healthz", "GET"): PUBLIC,
    ("/readyz", "GET"): PUBLIC,
    ("/static/<path:filename>", "GET"): PUBLIC,
    ("/.well-known/smart-configuration", "GET"): PUBLIC,
    ("/fhir/metadata", "GET"): PUBLIC,
    ("/fhir/OperationDefinition", "GET"): PUBLIC,
    ("/fhir/OperationDefinition/<definition_id>", "GET"): PUBLIC,
    ("/fhir/SearchParameter", "GET"): PUBLIC,
    ("/fhir/SearchParameter/<parameter_id>", "GET"): PUBLIC,
    ("/auth/token", "POST"): PUBLIC,
    ("/auth/otp", "POST"): PUBLIC,
    ("/auth/logout", "POST"): api(*AUTHENTICATED),
    # SMART App Launch: the app is checked first (400 without one), then the web session.
    ("/auth/authorize", "GET"): PUBLIC_PAGE,
    ("/auth/authorize", "POST"): PUBLIC_PAGE,
    ("/auth/launch", "POST"): api(*STAFF),  # tested in tests/unit/api/test_smart_launch.py
    # FHIR REST, exercised on ImagingStudy (the patient's own) and Patient for create.
    ("/fhir/<resource_type>", "GET"): api(*READERS),
    ("/fhir/<resource_type>/_search", "POST"): api(*READERS),
    ("/fhir/<resource_type>/<resource_id>", "GET"): api(*READERS),
    ("/fhir/<resource_type>/<resource_id>/_history", "GET"): api(*READERS),
    ("/fhir/<resource_type>/<resource_id>/_history/<version_id>", "GET"): api(*READERS),
    ("/fhir/<resource_type>", "POST"): api("doctor", "admin", "system-write"),
    ("/fhir/<resource_type>/$validate", "POST"): api(*AUTHENTICATED),
    ("/fhir/ImagingStudy/$upload", "POST"): api("patient", "admin", "system-write"),
    ("/fhir/Binary", "POST"): api("admin", "system-write"),  # a patient uploads directly
    ("/fhir/ImagingStudy/<study_id>/$classify", "POST"): api("doctor"),
    ("/fhir/ImagingStudy/<study_id>/$verify", "POST"): api("doctor"),
    ("/fhir/ImagingStudy/<study_id>/$pharmacy-review", "POST"): api("pharmacist"),
    ("/fhir/ImagingStudy/<study_id>/$approve", "POST"): api("admin"),
    ("/fhir/DiagnosticReport/<report_id>/$amend", "POST"): api("doctor"),
    ("/fhir/DiagnosticReport/<report_id>/$approve-amendment", "POST"): api("admin"),
    # Update is served for MedicationRequest only: on the ImagingStudy tried here every
    # signed-in caller gets 405; who may change a prescription is tested in test_prescriptions.
    ("/fhir/<resource_type>/<resource_id>", "PUT"): api(*AUTHENTICATED),
    ("/fhir/ImagingStudy/<study_id>/$return-to-patient", "POST"): api("doctor"),
    ("/fhir/ImagingStudy/<study_id>/$send-back", "POST"): api("pharmacist", "admin"),
    ("/fhir/ImagingStudy/<study_id>/$prioritize", "POST"): api("doctor"),
    # Subscriptions: system clients with Subscription.write; each sees only its own.
    ("/fhir/Subscription", "POST"): api("system-write"),
    **{(f"/fhir/Subscription/<subscription_id>{op}", method): api(*SYSTEMS)
       for op, method in (("", "GET"), ("/$status", "GET"), ("/$status", "POST"),
                          ("/$events", "GET"), ("/$events", "POST"), ("/_history", "GET"),
                          ("/_history/<version_id>", "GET"))},
    # DICOMweb: STOW-RS is the upload step; QIDO-RS and WADO-RS read ImagingStudy.
    ("/dicomweb/studies", "POST"): api("patient", "admin", "system-write"),
    ("/dicomweb/studies/<study>", "POST"): api("patient", "admin", "system-write"),
    **{(f"/dicomweb{path}", "GET"): api(*READERS) for path in (
        "/studies", "/studies/<study>", "/studies/<study>/metadata",
        "/studies/<study>/series", "/studies/<study>/instances",
        "/studies/<study>/series/<series>", "/studies/<study>/series/<series>/metadata",
        "/studies/<study>/series/<series>/instances",
        "/studies/<study>/series/<series>/instances/<instance>",
        "/studies/<study>/series/<series>/instances/<instance>/metadata",
        "/studies/<study>/series/<series>/instances/<instance>/rendered")},
    # The web UI.
    ("/", "GET"): PUBLIC_PAGE,
    ("/login", "GET"): PUBLIC_PAGE,
    ("/login", "POST"): PUBLIC_PAGE,
    ("/logout", "POST"): PUBLIC_PAGE,
    ("/account/password", "GET"): page(*HUMANS),
    ("/account/password", "POST"): page(*HUMANS),
    ("/account/authenticator", "GET"): page("admin"),  # the roles with a second factor
    ("/account/authenticator", "POST"): page("admin"),
    ("/account/authenticator/code", "POST"): page("admin"),
    ("/patient", "GET"): page("patient"),
    ("/patient/scans", "POST"): page("patient"),
    ("/patient/reports/<report_id>", "GET"): page("patient"),
    ("/patient/reports/<report_id>/pdf", "GET"): page("patient"),
    ("/doctor", "GET"): page("doctor"),
    ("/doctor/scans/<study_id>", "GET"): page("doctor"),
    ("/doctor/scans/<study_id>/classify", "POST"): page("doctor"),
    ("/doctor/scans/<study_id>/verify", "POST"): page("doctor"),
    ("/doctor/scans/<study_id>/blind-read", "POST"): page("doctor"),
    ("/doctor/scans/<study_id>/priority", "POST"): page("doctor"),
    ("/doctor/scans/<study_id>/return", "POST"): page("doctor"),
    ("/doctor/scans/<study_id>/amend", "POST"): page("doctor"),
    ("/scans/<study_id>/image", "GET"): page(*STAFF),
    ("/scans/<study_id>/gradcam", "GET"): page(*STAFF),
    ("/pharmacist", "GET"): page("pharmacist"),
    ("/pharmacist/scans/<study_id>", "GET"): page("pharmacist"),
    ("/pharmacist/scans/<study_id>/complete", "POST"): page("pharmacist"),
    ("/pharmacist/scans/<study_id>/prescriptions", "POST"): page("pharmacist"),
    ("/pharmacist/scans/<study_id>/send-back", "POST"): page("pharmacist"),
    ("/pharmacist/scans/<study_id>/prescriptions/<prescription_id>", "GET"):
        page("pharmacist"),
    ("/pharmacist/scans/<study_id>/prescriptions/<prescription_id>", "POST"):
        page("pharmacist"),
    ("/pharmacist/scans/<study_id>/prescriptions/<prescription_id>/cancel", "POST"):
        page("pharmacist"),
    ("/admin", "GET"): page("admin"),
    ("/admin/audit", "GET"): page("admin"),
    ("/admin/system", "GET"): page("admin"),
    ("/admin/users", "GET"): page("admin"),
    ("/admin/users", "POST"): page("admin"),
    ("/admin/users/<user_id>/active", "POST"): page("admin"),
    ("/admin/users/<user_id>/role", "POST"): page("admin"),
    ("/admin/users/<user_id>/totp/reset", "POST"): page("admin"),
    ("/admin/users/confirm", "POST"): page("admin"),
    ("/admin/users/code", "POST"): page("admin"),
    ("/admin/scans/<study_id>", "GET"): page("admin"),
    ("/admin/scans/<study_id>/approve", "POST"): page("admin"),
    ("/admin/scans/<study_id>/code", "POST"): page("admin"),
    ("/admin/scans/<study_id>/send-back", "POST"): page("admin"),
    ("/admin/reports/<report_id>", "GET"): page("admin"),
    ("/admin/reports/<report_id>/mail/<mail_id>/resend", "POST"): page("admin"),
    ("/admin/reports/<report_id>/amendment/approve", "POST"): page("admin"),
}


def _routes(app) -> list[tuple[str, str]]:
    return sorted({(rule.rule, method) for rule in app.url_map.iter_rules()
                   for method in rule.methods - {"HEAD", "OPTIONS"}})


def test_every_route_has_a_rule(app):
    missing = [route for route in _routes(app) if route not in RULES]
    assert not missing, f"add these routes to RULES in {__file__}: {missing}"


def _system_token(app, client, name: str, scopes: str) -> str:
    with app.app_context():
        new = clients.create_client(db.session, name, scopes)
    response = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": new.client_id,
        "client_secret": new.client_secret})
    return response.get_json()["access_token"]


def _request(client, rule: str, method: str, ids: dict[str, str], patient_id: str,
             headers: dict[str, str], form_extra: dict[str, str]):
    values = {"resource_type": "Patient" if (rule, method) == ("/fhir/<resource_type>",
                                                              "POST")
              else "ImagingStudy", "resource_id": ids["study"], "version_id": "1",
              "study_id": ids["study"], "report_id": ids["report"], "user_id": ids["user"],
              "prescription_id": "no-such-prescription",
              "definition_id": "ImagingStudy-upload", "parameter_id": "Provenance-scan-patient",
              "path:filename": "css/app.css"}
    url = rule
    for name, value in values.items():
        url = url.replace(f"<{name}>", value)
    if method == "GET":
        return client.get(url, headers=headers)
    if method == "PUT":
        return client.put(url, headers={**headers, "Content-Type": "application/fhir+json"},
                          data=json.dumps({"resourceType": "ImagingStudy"}))
    if rule == "/fhir/ImagingStudy/$upload":
        return client.post(url, headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(xray_png()), "x.png"),
                                 "patient": patient_id})
    if rule == "/fhir/<resource_type>/_search":
        return client.post(url, headers=headers, data={"_count": "1"})
    if rule.startswith(("/fhir/", "/auth/logout")):
        body = {
            "/fhir/<resource_type>": {"resourceType": "Patient", "name": [{"family": "M"}]},
            "/fhir/<resource_type>/$validate": {"resourceType": "Patient"},
            "/fhir/ImagingStudy/<study_id>/$verify":
                parameters(note="Matrix.", agree=False, finding="Normal"),
            "/fhir/ImagingStudy/<study_id>/$pharmacy-review": parameters(note="Matrix."),
            "/fhir/ImagingStudy/<study_id>/$return-to-patient": parameters(reason="Matrix."),
            "/fhir/ImagingStudy/<study_id>/$send-back": parameters(reason="Matrix."),
            "/fhir/ImagingStudy/<study_id>/$prioritize": parameters(priority="urgent"),
            "/fhir/DiagnosticReport/<report_id>/$amend": parameters(note="Matrix."),
        }.get(rule)
        return client.post(url, headers={**headers, "Content-Type": "application/fhir+json"},
                           data=json.dumps(body) if body is not None else None)
    return client.post(url, headers=headers, data={"note": "Matrix.", **form_extra})


def test_role_route_method_matrix(app):
    client = app.test_client()
    with app.app_context():
        people = {role: make_user(role) for role in HUMANS}
        patient_user = people["patient"][0]
        study_id, _ = make_scan("PHARMACIST_COMPLETED", patient=patient_user)
        released, _ = make_scan("REPORT_READY", patient=patient_user)
        report_id = db.session.query(Report).filter_by(scan_id=released).one().id
        ids = {"study": study_id, "report": report_id, "user": make_user("patient")[0].id}
        logins = {role: (user.email, password) for role, (user, password) in people.items()}
        patient_id = patient_user.patient_id
    tokens = {role: auth_headers(client, app, *logins[role], role)["Authorization"]
              .removeprefix("Bearer ") for role in HUMANS}
    tokens["system-read"] = _system_token(app, client, "matrix-read", "system/*.read")
    tokens["system-write"] = _system_token(app, client, "matrix-write", "system/*.write")

    failures = []
    for rule, method in _routes(app):
        policy = RULES.get((rule, method))
        if policy is None or rule.startswith("/auth/") and method == "POST" and \
                rule != "/auth/logout":
            continue  # missing rules fail above; sign-in itself is tested in security/
        for caller in CALLERS:
            if policy.ui and caller in SYSTEMS:
                continue
            caller_client = app.test_client()
            headers: dict[str, str] = {}
            form_extra: dict[str, str] = {}
            if caller != "anonymous":
                if policy.ui:
                    caller_client.set_cookie("access_token_cookie", tokens[caller])
                    with app.app_context():
                        form_extra["csrf_token"] = get_csrf_token(tokens[caller])
                else:
                    headers["Authorization"] = f"Bearer {tokens[caller]}"
            response = _request(caller_client, rule, method, ids, patient_id, headers,
                                form_extra)
            status = response.status_code
            location = response.headers.get("Location", "")
            to_login = policy.ui and status in (302, 303) and "/login" in location
            if policy.public:
                expected, passed = "ok", status < 500
            elif caller == "anonymous":
                # A form without a session's CSRF token is refused (400) before anything else.
                expected, passed = "login", status == 401 or to_login or (
                    policy.ui and method == "POST" and status == 400)
            elif caller in policy.allowed:
                expected, passed = "ok", status not in (401, 403) and not to_login
            else:
                expected, passed = "denied", status in (403, 404)
            if status >= 500:
                passed = False
            if not passed:
                failures.append(f"{method} {rule} as {caller}: {status}, expected {expected}")
            if rule in ("/auth/logout", "/logout") and caller != "anonymous":
                # Logging out revoked that token: sign the caller in again.
                if caller in HUMANS:
                    tokens[caller] = auth_headers(client, app, *logins[caller], caller)[
                        "Authorization"].removeprefix("Bearer ")
                else:
                    scopes = "system/*.read" if caller == "system-read" else "system/*.write"
                    tokens[caller] = _system_token(app, client, f"matrix-{caller}-{rule[1:5]}",
                                                   scopes)
    assert not failures, "\n".join(failures)
