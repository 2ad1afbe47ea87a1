"""E-mail addresses are validated wherever an account or a patient gets one."""

from __future__ import annotations

import pytest

from csss_fhir.errors import InvalidInputError
from csss_fhir.registration import checked_email
from tests.factories import make_user


@pytest.mark.parametrize("address", ["a@x.org, b@y.org", "a@x.org\r\nBcc: b@y.org",
                                     "no-at-sign", "a@x.org b@y.org", " "])
def test_anything_but_one_address_is_refused(address):
    with pytest.raises(InvalidInputError, match="e-mail address"):
        checked_email(address)


def test_hospital_internal_domains_are_accepted():
    assert checked_email(" Ward.7@St-Test.local ") == "Ward.7@st-test.local"


def test_the_admin_form_and_the_fhir_api_refuse_two_addresses(app, client, as_role):
    with app.app_context(), pytest.raises(InvalidInputError):
        make_user("patient", email="p@x.org,q@y.org")
    body = {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jo"]}],
            "telecom": [{"system": "email", "value": "p@x.org\r\nBcc: q@y.org"}]}
    response = client.post("/fhir/Patient", json=body, headers={
        **as_role("doctor"), "Content-Type": "application/fhir+json"})
    assert response.status_code in (400, 422), response.get_data(as_text=True)
