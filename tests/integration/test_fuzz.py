"""Property-based fuzzing of /auth and the workflow operations: whatever a client sends, the
answer is never a 500 (and on /fhir it is FHIR JSON). A fixed, derandomised example budget
keeps CI time and results stable."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csss_fhir import create_app
from tests.factories import login, make_login, make_scan, make_user, xray_png

pytestmark = pytest.mark.slow  # hundreds of requests per test

BUDGET = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
AUTH_KEYS = ("username", "password", "otp", "grant_type", "client_id", "client_secret",
             "scope")
CONTENT_TYPES = ("application/json", "application/fhir+json", "application/x-www-form-urlencoded",
                 "text/plain", "multipart/form-data", "", "application/json; charset=latin-1")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                              max_size=4),
    max_leaves=10)
auth_bodies = st.one_of(
    st.dictionaries(st.sampled_from(AUTH_KEYS), json_values, max_size=5).map(json.dumps),
    st.dictionaries(st.sampled_from(AUTH_KEYS), st.text(max_size=30), max_size=5).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items())),
    st.binary(max_size=200),
)
parameter_entries = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["note", "agree", "finding", "otp", "x"]) | st.text(max_size=8),
}, optional={"valueString": st.text(max_size=60), "valueBoolean": st.booleans(),
             "valueInteger": st.integers(), "part": st.just([])}), max_size=4)
operation_bodies = st.one_of(
    parameter_entries.map(lambda p: json.dumps({"resourceType": "Parameters", "parameter": p})),
    json_values.map(json.dumps),
    st.binary(max_size=200),
)


def _app(settings_):
    return create_app(dataclasses.replace(settings_, auth_rate_limit_address="10000/minute",
                                          auth_rate_limit_account="10000/minute"))


def _no_server_error(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        json.loads(response.get_data())  # an OperationOutcome or an OAuth-style JSON error


def test_auth_endpoints_never_fail_with_500(settings):
    app = _app(settings)
    client = app.test_client()
    with app.app_context():
        make_user("admin", email="fuzz-admin@test.local", password="fuzz-admin-password-1")

    @BUDGET
    @given(path=st.sampled_from(["/auth/token", "/auth/otp", "/auth/logout"]), body=auth_bodies,
           content_type=st.sampled_from(CONTENT_TYPES),
           authorization=st.none() | st.text(max_size=40))
    def check(path, body, content_type, authorization):
        headers = {"Content-Type": content_type} if content_type else {}
        if authorization is not None and authorization.isprintable() and \
                authorization.isascii():
            headers["Authorization"] = authorization
        _no_server_error(client.post(path, data=body, headers=headers))

    check()


def test_workflow_operations_never_fail_with_500(settings):
    app = _app(settings)
    client = app.test_client()
    with app.app_context():
        scans = {state: make_scan(state)[0] for state in
                 ("PENDING_AI", "AI_ANALYZED", "DOCTOR_VERIFIED", "PHARMACIST_COMPLETED")}
    headers = {role: login(client, make_login(app, role))
               for role in ("doctor", "pharmacist", "admin", "patient")}

    @BUDGET
    @given(role=st.sampled_from(sorted(headers)),
           operation=st.sampled_from(["$classify", "$verify", "$pharmacy-review", "$approve"]),
           study=st.sampled_from(sorted(scans.values())) | st.text(max_size=20).filter(
               lambda s: "/" not in s and "?" not in s and "#" not in s),
           body=operation_bodies, content_type=st.sampled_from(CONTENT_TYPES),
           if_match=st.none() | st.text(max_size=12).filter(str.isprintable))
    def check(role, operation, study, body, content_type, if_match):
        request_headers = dict(headers[role])
        if content_type:
            request_headers["Content-Type"] = content_type
        if if_match is not None and if_match.isascii():
            request_headers["If-Match"] = if_match
        response = client.post(f"/fhir/ImagingStudy/{study}/{operation}", data=body,
                               headers=request_headers)
        _no_server_error(response)

    check()


def test_upload_never_fails_with_500(settings):
    app = _app(settings)
    client = app.test_client()
    headers = login(client, make_login(app, "patient"))
    png = xray_png(64)

    @BUDGET
    @given(data=st.one_of(st.binary(max_size=300), st.just(png),
                          st.binary(max_size=40).map(lambda tail: png[:200] + tail)),
           filename=st.text(max_size=30),
           fields=st.dictionaries(st.sampled_from(["patient", "modality", "bodySite",
                                                   "description"]), st.text(max_size=30),
                                  max_size=4))
    def check(data, filename, fields):
        response = client.post("/fhir/ImagingStudy/$upload", headers=headers,
                               content_type="multipart/form-data",
                               data={"file": (io.BytesIO(data), filename or "f"), **fields})
        _no_server_error(response)

    check()


# --- every route --------------------------------------------------------------------------
# Payloads the attack campaign of issue 15 used, besides random ones: JSON nested deeper than
# the parser's recursion, full-width digits where a code goes, dates at the ends of the
# calendar, and every _include/_revinclude value.
DEEP_JSON = "[" * 100_000 + "]" * 100_000
EXTREME_DATES = ("9999-12-31", "0001-01-01T00:00:00+14:00", "sa9999-12-31",
                 "gt9999-12-31T23:59:59-14:00", "eb0001-01-01", "10000-01-01", "2025-13-45")
CODES = ("１２３４５６", "١٢٣٤٥٦", "000000", "12 345", "")


def _include_values() -> list[str]:
    from csss_fhir.search import INCLUDES, REVINCLUDES

    return [f"_include={v}" for values in INCLUDES.values() for v in values] + \
        [f"_revinclude={v}" for values in REVINCLUDES.values() for v in values] + \
        ["_include=*", "_include=Observation:nothing", "_include:iterate=Observation:*"]


query_strings = st.one_of(
    st.sampled_from(_include_values()),
    st.sampled_from(EXTREME_DATES).flatmap(lambda d: st.sampled_from(
        [f"started={d}", f"date={d}", f"issued={d}", f"authored={d}", f"modified={d}",
         f"birthdate={d}", f"_lastUpdated={d}"])),
    st.dictionaries(st.sampled_from(["_count", "_offset", "q", "role", "status", "patient",
                                     "subject", "code", "_summary", "_sort", "since",
                                     "agent", "type"]),
                    st.text(max_size=20), max_size=3).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items())),
)
form_bodies = st.dictionaries(
    st.sampled_from(["otp", "note", "finding", "agree", "password", "current_password",
                     "new_password", "confirm_password", "email", "name", "role", "active",
                     "text", "question", "medication", "dose", "mrn", "birth_date",
                     "reason"]),
    st.one_of(st.sampled_from(CODES + EXTREME_DATES), st.text(max_size=40),
              st.just("x" * 20_000)), max_size=5)
any_bodies = st.one_of(st.just(DEEP_JSON), operation_bodies,
                       st.sampled_from(CODES).map(lambda c: json.dumps({"otp": c})))


PER_ROUTE = settings(BUDGET, max_examples=10)


def test_every_route_never_fails_with_500(settings):
    """Each route of the URL map, as each role (bearer token for the API, the session cookie
    for the UI), with hostile path values, query strings and bodies."""
    from tests.unit.web.conftest import Browser, csrf_of

    app = _app(settings)
    with app.app_context():
        scan_id, patient = make_scan("REPORT_READY")
        from csss_fhir.models import Scan, db

        scan = db.session.get(Scan, scan_id)
        ids = [scan_id, scan.report.id, scan.prediction.id, scan.review.id, scan.task.id,
               patient.patient_id, patient.id, scan.image_id, "nope", "１２３", "%00"]
    logins = {role: make_login(app, role) for role in ("patient", "doctor", "pharmacist",
                                                         "admin")}
    api_client = app.test_client()
    bearer = {role: login(api_client, user) for role, user in logins.items()}
    browsers = {}
    for role, user in logins.items():
        browser = Browser(app, app.test_client())
        browser.sign_in(user.email, user.password, role)
        browsers[role] = browser
    rules = sorted((rule for rule in app.url_map.iter_rules()
                    if rule.endpoint != "static" and not rule.rule.startswith("/auth/logout")
                    and not rule.rule.endswith("/logout")),
                   key=lambda rule: rule.rule)

    @PER_ROUTE
    @given(role=st.sampled_from(sorted(logins)),
           method=st.sampled_from(["GET", "POST"]), ids_or_text=st.lists(
               st.sampled_from(ids) | st.sampled_from(["ImagingStudy", "Observation",
                                                       "Patient", "Binary", "Practitioner"]),
               min_size=3, max_size=3),
           query=query_strings, form=form_bodies, body=any_bodies,
           as_json=st.booleans())
    def check(rule, role, method, ids_or_text, query, form, body, as_json):
        values = dict(zip(rule.arguments, ids_or_text, strict=False))
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", values[name])
            for converter in ("string", "path", "int"):
                path = path.replace(f"<{converter}:{name}>", values[name])
        if method not in rule.methods:
            method = next(iter(sorted(rule.methods - {"HEAD", "OPTIONS"})))
        url = f"{path}?{query}"
        if path.startswith(("/fhir", "/auth", "/.well-known")):
            client, headers = api_client, dict(bearer[role])
            if method == "POST":
                content_type = "application/fhir+json" if as_json else \
                    "application/x-www-form-urlencoded"
                response = client.post(url, data=body if as_json else form, headers={
                    **headers, "Content-Type": content_type})
            else:
                response = client.get(url, headers=headers)
            _no_server_error(response)
            return
        browser = browsers[role]
        if method == "POST":
            token = csrf_of(browser.client.get("/account/password").get_data(as_text=True))
            response = browser.client.post(url, data={**form, "csrf_token": token})
        else:
            response = browser.client.get(url)
        assert response.status_code < 500, (url, response.get_data(as_text=True)[:300])

    for rule in rules:  # every route gets its own examples
        check(rule)
