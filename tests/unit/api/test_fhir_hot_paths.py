"""What a FHIR read and a search cost in SQL, and that their fast path (the JSON stored
for a row's current version) serves exactly what rendering the row now gives."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from csss_fhir import resources
from csss_fhir.api.responses import fhir_response
from csss_fhir.models import Scan, db
from tests.factories import make_scan, make_user, parse_fhir


@contextmanager
def counted_statements(app):
    """The SQL statements the block sends (their first word)."""
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def on_statement(connection, cursor, statement, *args) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


def _patient_with_scans(app, count: int) -> str:
    with app.app_context():
        patient = make_user("patient")[0]
        for _ in range(count):
            make_scan("PENDING_AI", patient=patient)
        return patient.patient_id


def _search(client, headers, patient_id: str, count: int) -> list[str]:
    with counted_statements(client.application) as statements:
        response = client.get(f"/fhir/ImagingStudy?patient={patient_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_fhir(response.data, "Bundle")
    assert len(bundle.entry) == count
    for entry in bundle.entry:
        parse_fhir(entry.resource.model_dump_json(), "ImagingStudy")
    return statements


def test_a_search_sends_as_many_queries_for_20_entries_as_for_2(app, client, as_role):
    headers = as_role("doctor")
    two = _search(client, headers, _patient_with_scans(app, 2), 2)
    twenty = _search(client, headers, _patient_with_scans(app, 20), 20)
    assert len(twenty) == len(two)
    assert twenty.count("INSERT") == 1  # one audit row: one patient


def test_a_search_counts_its_matches_only_when_the_page_cannot_hold_them(app, client,
                                                                         as_role):
    headers = as_role("doctor")
    patient_id = _patient_with_scans(app, 7)
    totals, statements = {}, {}
    for count in (5, 20):
        with counted_statements(app) as sent:
            response = client.get(f"/fhir/ImagingStudy?patient={patient_id}&_count={count}",
                                  headers=headers)
        totals[count] = parse_fhir(response.data, "Bundle").total
        statements[count] = len(sent)
    assert totals == {5: 7, 20: 7}
    assert statements[5] == statements[20] + 1  # the count query


def test_a_read_sends_three_queries(app, client, as_role):
    """The caller (with the deny-list), the row with its stored JSON, the audit row."""
    headers = as_role("doctor")
    with app.app_context():
        scan_id, _ = make_scan("PENDING_AI")
    with counted_statements(app) as statements:
        assert client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers).status_code == 200
    assert statements == ["SELECT", "SELECT", "INSERT"]


def test_read_and_search_serve_what_rendering_the_row_gives(app, client, as_role):
    headers = as_role("doctor")
    patient_id = _patient_with_scans(app, 3)
    read_patient = client.get(f"/fhir/Patient/{patient_id}", headers=headers)
    searched = client.get(f"/fhir/ImagingStudy?patient={patient_id}", headers=headers)
    with app.app_context(), app.test_request_context():
        from csss_fhir.models import Patient

        rendered = fhir_response(resources.render(db.session.get(Patient, patient_id)))
        assert read_patient.data == rendered.data
        assert read_patient.headers["ETag"] == rendered.headers["ETag"]
        assert read_patient.headers["Last-Modified"] == rendered.headers["Last-Modified"]
        for entry in searched.get_json()["entry"]:
            scan = db.session.get(Scan, entry["resource"]["id"])
            assert entry["resource"] == fhir_response(resources.render(scan)).get_json()


def test_a_row_changed_without_a_stored_version_is_rendered_afresh(app, client, as_role):
    """A change that skipped history.record bumps the row's version past the stored one:
    the read renders the row instead of serving the older JSON."""
    headers = as_role("doctor")
    with app.app_context():
        scan_id, _ = make_scan("PENDING_AI")
        db.session.get(Scan, scan_id).description = "changed without a stored version"
        db.session.commit()
    response = client.get(f"/fhir/ImagingStudy/{scan_id}", headers=headers)
    assert response.status_code == 200
    study = parse_fhir(response.data, "ImagingStudy")
    assert study.description == "changed without a stored version"
    assert response.headers["ETag"] == f'W/"{study.meta.versionId}"'
    searched = client.get(f"/fhir/ImagingStudy?_id={scan_id}", headers=headers).get_json()
    assert searched["entry"][0]["resource"]["description"] == \
        "changed without a stored version"
