"""A database written by the first release (schema 0004) upgrades to today's head, keeps
every row, and the service reads and works on it.

`data/first_release.sql.gz` is the data (INSERT statements, no schema) of a SQLite database
that release 1 (commit 4d542a7) wrote while walking its chain: 20 users, 6 patients, 6 scans
in every state from PENDING_AI to REPORT_READY, 2 released reports, 2 queued e-mails and 92
resource versions. The e-mails' PDF attachments were replaced by a line of text to keep the
file small; the scan images are not included (nothing here reads pixels).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import text

from csss_fhir import create_app, migrate
from tests import factories

FIRST_RELEASE_DATA = Path(__file__).parent / "data" / "first_release.sql.gz"
FIRST_RELEASE_HEAD = "0004"
COUNTS = {"user_account": 20, "patient": 6, "scan": 6, "task": 6, "report": 2,
          "mail_message": 2, "resource_version": 92, "doctor_review": 4}


@pytest.fixture
def upgraded(tmp_path: Path):
    app = create_app(factories.settings_for(tmp_path / "instance",
                                            f"sqlite:///{tmp_path / 'release1.db'}"))
    migrate.upgrade(app, FIRST_RELEASE_HEAD)
    from csss_fhir.models import db

    with app.app_context(), db.engine.begin() as connection:
        raw = connection.connection.driver_connection
        raw.executescript(gzip.decompress(FIRST_RELEASE_DATA.read_bytes()).decode())
    migrate.upgrade(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _count(app, table: str) -> int:
    from csss_fhir.models import db

    with app.app_context():
        return db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_every_first_release_row_survives_the_upgrade(upgraded):
    for table, expected in COUNTS.items():
        assert _count(upgraded, table) == expected, table


def test_the_upgraded_chain_reads_as_valid_fhir(upgraded):
    client = upgraded.test_client()
    doctor = factories.login(client, factories.make_login(upgraded, "doctor"))

    tasks = client.get("/fhir/Task?_count=50", headers=doctor)
    assert tasks.status_code == 200, tasks.get_data(as_text=True)
    bundle = factories.parse_fhir(tasks.get_json(), "Bundle")
    assert bundle.total == 6
    states = {entry.resource.businessStatus.coding[0].code for entry in bundle.entry}
    assert {"PENDING_AI", "AI_ANALYZED", "DOCTOR_VERIFIED", "REPORT_READY"} <= states

    for resource_type in ("ImagingStudy", "Observation", "DiagnosticReport", "Patient"):
        found = client.get(f"/fhir/{resource_type}?_count=50", headers=doctor)
        assert found.status_code == 200, (resource_type, found.get_data(as_text=True))
        for entry in factories.parse_fhir(found.get_json(), "Bundle").entry or []:
            factories.emitted(entry.resource, resource_type)

    reports = client.get("/fhir/DiagnosticReport?_count=50", headers=doctor).get_json()
    assert reports["total"] == 2
    assert all(entry["resource"]["status"] == "final" and entry["resource"].get("conclusion")
               for entry in reports["entry"])


def test_a_first_release_scan_goes_on_through_todays_rules(upgraded):
    client = upgraded.test_client()
    doctor = factories.login(client, factories.make_login(upgraded, "doctor"))
    waiting = client.get("/fhir/Task?business-status=AI_ANALYZED", headers=doctor).get_json()
    assert waiting["total"] == 1
    study = waiting["entry"][0]["resource"]["focus"]["reference"]

    without_choice = client.post(f"/fhir/{study}/$verify", headers=doctor,
                                 json=factories.parameters(note="Reviewed."))
    assert without_choice.status_code == 400  # `agree` is required today, also for old scans

    verified = client.post(f"/fhir/{study}/$verify", headers=doctor,
                           json=factories.parameters(note="Reviewed.", agree=True))
    assert verified.status_code == 201, verified.get_data(as_text=True)
    factories.parse_fhir(verified.get_json(), "Observation")
    after = client.get("/fhir/Task?business-status=DOCTOR_VERIFIED", headers=doctor).get_json()
    assert after["total"] == 2
