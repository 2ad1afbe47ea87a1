"""dicom_results.export: with PACS_DESTINATION set, a release's SR and SC reach a real
C-STORE SCP on loopback through the job engine — once, retried with back-off while the PACS
is down, and "failed" with the PACS's status after PACS_MAX_ATTEMPTS."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from sqlalchemy import select

from csss_fhir.jobs import SEND_DICOM, SWEEP
from csss_fhir.models import PacsExport, Scan, db, utcnow
from csss_fhir.settings import PacsDestination
from tests import factories

SR = "1.2.840.10008.5.1.4.1.1.88.34"
SC = "1.2.840.10008.5.1.4.1.1.7"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pacs:
    """A pynetdicom storage SCP on loopback that keeps what it receives."""

    def __init__(self, port: int, status: int = 0x0000) -> None:
        self.port, self.status = port, status
        self.received: list = []
        self.calling: list[str] = []
        self.server = None

    def start(self) -> None:
        ae = AE(ae_title="PACS")
        for sop_class in (SR, SC):
            ae.add_supported_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])

    def _store(self, event) -> int:
        self.calling.append(event.assoc.requestor.ae_title)
        self.received.append(event.dataset)
        return self.status

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def pacs(port) -> Iterator[Pacs]:
    scp = Pacs(port)
    yield scp
    scp.stop()


@pytest.fixture
def settings(tmp_path, new_database, port):
    return factories.settings_for(tmp_path / "instance", new_database(),
                                  pacs_destination=PacsDestination("PACS", "127.0.0.1", port),
                                  pacs_max_attempts=2)


def release(app) -> tuple[Scan, PacsExport]:
    scan_id, _ = factories.make_scan("REPORT_READY")
    db.session.expire_all()
    scan = db.session.get(Scan, scan_id)
    [export] = db.session.scalars(select(PacsExport)).all()
    assert (export.report_id, export.report_version) == (scan.report.id, 1)
    return scan, export


def run(app, job: str, key: str | None) -> None:
    app.extensions["csss_jobs"].submit(job, key)  # the inline runner, as after a commit
    db.session.expire_all()


def test_a_release_is_stored_on_the_pacs_once(app, pacs):
    pacs.start()
    with app.app_context():
        scan, export = release(app)
        assert export.state == "sent" and export.attempts == 1 and export.sent_at
        assert sorted(d.SOPClassUID for d in pacs.received) == sorted([SR, SC])
        assert {d.StudyInstanceUID for d in pacs.received} == {scan.study_uid}
        assert pacs.calling == ["CSSS", "CSSS"]  # DICOM_AE_TITLE, in one association
        run(app, SEND_DICOM, export.id)  # a duplicate message
        run(app, SWEEP, None)
        assert len(pacs.received) == 2


def test_a_pacs_that_is_down_is_tried_again_after_a_back_off(app, pacs):
    with app.app_context():
        _, export = release(app)  # nobody listens yet
        assert (export.state, export.attempts) == ("pending", 1)
        assert "no association with PACS@127.0.0.1" in export.last_error
        assert export.due_at > utcnow() + timedelta(seconds=20)  # the back-off
        pacs.start()
        run(app, SWEEP, None)  # not due yet: nothing is sent
        assert pacs.received == []
        export.due_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        run(app, SWEEP, None)
        export = db.session.get(PacsExport, export.id)
        assert (export.state, export.attempts, export.last_error) == ("sent", 2, None)
        assert len(pacs.received) == 2


def test_a_refusing_pacs_ends_failed_with_its_status(app, port):
    scp = Pacs(port, status=0xA700)  # Refused: out of resources
    scp.start()
    try:
        with app.app_context():
            _, export = release(app)
            assert export.state == "pending" and "status 0xA700" in export.last_error
            export.due_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
            run(app, SWEEP, None)
            export = db.session.get(PacsExport, export.id)
            assert (export.state, export.attempts) == ("failed", 2)  # PACS_MAX_ATTEMPTS
            assert export.last_error.startswith("attempt 2: PACS@127.0.0.1")
            run(app, SEND_DICOM, export.id)
            assert db.session.get(PacsExport, export.id).attempts == 2  # never again
    finally:
        scp.stop()
