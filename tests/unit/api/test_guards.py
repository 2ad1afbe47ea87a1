"""api/guards.py: a NUL character anywhere a client types text is a 400, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import make_scan, parse_fhir


@pytest.mark.parametrize("path", [
    "/fhir/Patient?name=%00",
    "/fhir/ImagingStudy?_include=DiagnosticReport:result&identifier=a%00b",
    "/fhir/Patient/%00",
])
def test_a_nul_in_the_address_is_a_400_outcome(client, as_role, path):
    response = client.get(path, headers=as_role("doctor"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "NUL" in parse_fhir(response.data, "OperationOutcome").issue[0].diagnostics


def test_a_nul_in_a_dicomweb_path_is_a_400(app, client, as_role):
    with app.app_context():
        scan_id, _ = make_scan("AI_ANALYZED")
    response = client.get(f"/dicomweb/studies/{scan_id}/series/%00", headers=as_role("admin"))
    assert response.status_code == 400


def test_a_nul_in_a_json_body_is_a_400(client, as_role):
    response = client.post("/fhir/Patient", headers=as_role("admin"),
                           json={"resourceType": "Patient", "name": [{"family": "A\u0000B"}]})
    assert response.status_code == 400
    assert "NUL" in parse_fhir(response.data, "OperationOutcome").issue[0].diagnostics


def test_a_nul_in_a_form_is_refused_on_the_page(client):
    response = client.post("/login", data={"email": "a\x00@b.c", "password": "x"})
    assert response.status_code == 400
