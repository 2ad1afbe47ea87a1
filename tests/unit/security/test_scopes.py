"""SMART v1 and v2 system scopes, and what a request is granted (RFC 6749 §3.3)."""

from __future__ import annotations

import pytest

from csss_fhir.security import scopes

HELD = ("system/*.read", "system/Patient.write")


@pytest.mark.parametrize("requested, granted", [
    ("system/Patient.rs", ("system/Patient.rs",)),
    ("system/Patient.cruds", ("system/Patient.cruds",)),
    ("system/ImagingStudy.cruds", ("system/ImagingStudy.rs",)),  # narrowed to what is held
    ("system/*.rs", ("system/*.rs",)),
    ("system/Patient.read", ("system/Patient.read",)),
    ("launch/patient system/Patient.rs openid", ("system/Patient.rs",)),
    ("system/Patient.rs?identifier=x", ()),  # v2 query scopes are not supported
    ("system/Patient.r", ()),  # read without search: the rules cannot grant half
    ("system/ImagingStudy.write", ()),
    ("system/AuditEvent.rs", ()),  # `*` never covers the audit trail
    ("system/*.cud", ()),  # a wildcard only for a holder of the wildcard
])
def test_grant_narrows_to_what_is_held(requested, granted):
    given = scopes.grant(scopes.split(requested), HELD)
    assert tuple(scope.text() for scope in given) == granted


def test_v2_grants_read_as_the_v1_rules():
    assert scopes.as_v1(["system/Patient.cruds", "system/*.rs", "launch/patient"]) == {
        "system/Patient.read", "system/Patient.write", "system/*.read"}


def test_audit_needs_its_own_scope():
    assert scopes.covered("AuditEvent", "read", ("system/AuditEvent.read",))
    assert not scopes.covered("AuditEvent", "read", ("system/*.read",))
