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
