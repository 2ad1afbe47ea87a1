"""Which rows a caller may see (csss_fhir/search/visibility.py): a patient never sees another
patient's rows, whether by search, _include, _revinclude or a read by id."""

from __future__ import annotations

import pytest

from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.models import Scan, User
from csss_fhir.resources import SERVED, type_of
from csss_fhir.search import PARAMETERS, SearchRequest, Viewer, find, search
from csss_fhir.search.includes import REVERSE, visible_unique
from csss_fhir.security.access import PATIENT_READABLE
from tests.factories import make_scan, make_user, parse_fhir


@pytest.fixture
def two_patients(session):
    """Two patients with a released report each: (mine, theirs) as (Patient id, Scan id)."""
    mine, theirs = [make_scan("REPORT_READY") for _ in range(2)]
    return ((mine[1].patient_id, mine[0]), (theirs[1].patient_id, theirs[0]))


def patient_search(session, patient_id: str, resource_type: str, *params: tuple[str, str],
                   may_read=PATIENT_READABLE.__contains__):
    return search(session, SearchRequest(resource_type, list(params), compartment=patient_id,
                                         may_read=may_read))


def owner(row) -> str | None:
    column = SERVED[type_of(row)].patient_column
    return getattr(row, column) if column else None


def test_search_of_any_type_returns_only_the_callers_rows(session, two_patients):
    (mine, _), _ = two_patients
    for resource_type in PARAMETERS:
        result = patient_search(session, mine, resource_type, may_read=None)
        assert {owner(row) for row in result.rows} <= {mine, None}, resource_type
        assert result.total == len(result.rows), resource_type
    assert patient_search(session, mine, "Patient").total == 1


def test_naming_another_patients_row_finds_nothing(session, two_patients):
    (mine, _), (theirs, their_scan) = two_patients
    assert patient_search(session, mine, "ImagingStudy", ("_id", their_scan)).total == 0
    assert patient_search(session, mine, "DiagnosticReport", ("patient", theirs)).total == 0
    assert patient_search(session, mine, "Task", ("focus", f"ImagingStudy/{their_scan}")
                          ).total == 0
    with pytest.raises(ResourceNotFoundError):
        find(session, "ImagingStudy", their_scan, mine)
    assert find(session, "ImagingStudy", their_scan, None).id == their_scan


def test_include_and_revinclude_add_only_the_callers_rows(session, two_patients):
    (mine, my_scan), _ = two_patients
    studies = patient_search(session, mine, "ImagingStudy",
                             ("_include", "ImagingStudy:patient"),
                             ("_revinclude", "Observation:derived-from"),
                             ("_revinclude", "Provenance:target"))
    assert [row.id for row in studies.rows] == [my_scan]
    # Observations and Provenance are not for patients: only their own Patient is added.
    assert [(type_of(row), row.id) for row in studies.included] == [("Patient", mine)]
    patients = patient_search(session, mine, "Patient", ("_revinclude", "ImagingStudy:patient"))
    assert [row.id for row in patients.included] == [my_scan]


def test_rows_reached_by_reference_pass_the_same_check(session, two_patients):
    """Even if a reference led to another patient's rows, none of them would be included."""
    (mine, _), (theirs, their_scan) = two_patients
    their_rows = [session.get(Scan, their_scan), *REVERSE["Provenance:target"](
        session, [session.get(Scan, their_scan)])]
    assert their_rows[1:] and all(owner(row) == theirs for row in their_rows)
    assert visible_unique(Viewer(mine), their_rows, matched=[]) == []
    assert visible_unique(Viewer(None), their_rows, matched=[]) == their_rows


def test_patients_accounts_are_never_practitioners(session, two_patients):
    (mine, _), _ = two_patients
    doctor, _ = make_user("doctor")
    patient_user = session.query(User).filter_by(patient_id=mine).one()
    for compartment in (mine, None):
        ids = {row.id for row in patient_search(session, compartment, "Practitioner").rows}
        assert doctor.id in ids and patient_user.id not in ids
    assert not Viewer(None).sees(patient_user, "Practitioner")
    with pytest.raises(ResourceNotFoundError):
        find(session, "Practitioner", patient_user.id, None)


def test_types_the_caller_may_not_read_are_never_included(session, two_patients):
    (mine, _), _ = two_patients
    studies = patient_search(session, mine, "ImagingStudy", ("_include", "ImagingStudy:patient"),
                             may_read={"ImagingStudy"}.__contains__)
    assert studies.rows and studies.included == []


def test_patient_includes_never_show_what_a_patient_may_not_read(app, client, as_role):
    with app.app_context():
        patient, password = make_user("patient")
        email = patient.email
        scan_id, _ = make_scan("REPORT_READY", patient=patient)
    from tests.factories import auth_headers

    headers = auth_headers(client, app, email, password, "patient")
    bundle = parse_fhir(client.get("/fhir/DiagnosticReport?_include=DiagnosticReport:result",
                                   headers=headers).data)
    assert [e.resource.get_resource_type() for e in bundle.entry] == ["DiagnosticReport"]
    assert bundle.entry[0].resource.meta.security[0].code == "CLINAST_AIRPT"
    studies = parse_fhir(client.get(f"/fhir/ImagingStudy?_id={scan_id}"
                                    "&_include=ImagingStudy:patient", headers=headers).data)
    assert {e.resource.get_resource_type() for e in studies.entry} == {"ImagingStudy", "Patient"}


