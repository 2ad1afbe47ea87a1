"""The C-ECHO / C-STORE SCP on loopback: pynetdicom's SCU sends pydicom's test files over a
real association to the listener running in a thread."""

from __future__ import annotations

import io

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from sqlalchemy import func, select

from csss_fhir import create_app
from csss_fhir.dimse import listener
from csss_fhir.models import AuditRecord, Scan, db
from tests import factories
from tests.factories import dicom_sample, make_login, radiograph
from tests.servers import free_port

CALLING = "TEST_SCU"


@pytest.fixture
def scp(tmp_path, new_database):
    settings = factories.settings_for(tmp_path / "instance", new_database(),
                                      dicom_ae_title="CSSS_TEST",
                                      dicom_allowed_ae_titles=(CALLING, "OTHER"))
    app = create_app(settings)
    port = free_port()
    server = listener.serve(app, "127.0.0.1", port)
    try:
        yield app, port
    finally:
        server.shutdown()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def associate(port: int, datasets: list[pydicom.Dataset], calling: str = CALLING,
              called: str = "CSSS_TEST"):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    for context in {(d.SOPClassUID, d.file_meta.TransferSyntaxUID) for d in datasets}:
        ae.add_requested_context(*context)
    return ae.associate("127.0.0.1", port, ae_title=called)


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def send(port: int, files: list[bytes]) -> list[pydicom.Dataset]:
    datasets = [read(data) for data in files]
    association = associate(port, datasets)
    assert association.is_established
    try:
        return [association.send_c_store(dataset) for dataset in datasets]
    finally:
        association.release()


def scans(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Scan))


def test_echo_answers_success(scp):
    _, port = scp
    association = associate(port, [])
    assert association.is_established
    assert association.send_c_echo().Status == 0x0000
    association.release()


def test_the_radiograph_is_stored_and_the_others_are_refused_with_reasons(scp):
    app, port = scp
    for mrn in ("9RG1", "4MR1", "1CT1", "8NM1"):  # the PatientIDs of the files sent
        make_login(app, "patient", mrn=mrn)
    names = ["RG1_J2KR.dcm",  # chest CR, JPEG 2000 lossless
             "MR_small.dcm", "CT_small.dcm", "MR_small_jpeg_ls_lossless.dcm",
             "MR_small_RLE.dcm", "JPEG2000.dcm"]
    statuses = send(port, [dicom_sample(name) for name in names])
    assert statuses[0].Status == 0x0000
    for name, status in zip(names[1:], statuses[1:], strict=True):
        assert status.Status == 0xC000, name
        assert status.ErrorComment.startswith("Modality (0008,0060) is"), status.ErrorComment
        assert len(status.ErrorComment) <= 64
    with app.app_context():
        scan = db.session.scalars(select(Scan)).one()
        assert (scan.modality, scan.source_format) == ("CR", "dicom")
        assert scan.task.state == "AI_ANALYZED"  # classified on arrival, as $upload is
        audited = db.session.scalars(select(AuditRecord).where(
            AuditRecord.description == "DIMSE C-STORE", AuditRecord.outcome == "0")).all()
        assert [(r.patient_id, r.agent_client_id) for r in audited] == [
            (scan.patient_id, f"dicom:{CALLING}")]


def test_a_study_sent_twice_is_stored_once(scp):
    app, port = scp
    make_login(app, "patient", mrn="TWICE")
    instance = radiograph("TWICE")
    assert [s.Status for s in send(port, [instance])] == [0x0000]
    assert [s.Status for s in send(port, [instance, instance])] == [0x0000, 0x0000]
    assert scans(app) == 1


def test_identifier_mismatches_are_0xA900(scp):
    app, port = scp
    make_login(app, "patient", mrn="KNOWN")
    first = radiograph("KNOWN")
    same_study = radiograph("KNOWN", study_uid=read(first).StudyInstanceUID, seed=2)
    statuses = send(port, [radiograph("UNKNOWN"), first, same_study])
    assert [s.Status for s in statuses] == [0xA900, 0x0000, 0xA900]
    assert statuses[0].ErrorComment.startswith("unknown-patient: no Patient has")
    assert statuses[2].ErrorComment.startswith("duplicate-study: ")


def test_unknown_calling_ae_titles_are_rejected(scp):
    app, port = scp
    make_login(app, "patient", mrn="NOPE")
    assert not associate(port, [], calling="STRANGER").is_established
    assert not associate(port, [], called="WRONG_AE").is_established
    assert scans(app) == 0


def test_listening_without_an_allow_list_is_refused(tmp_path, new_database):
    from csss_fhir.cli import cli

    app = create_app(factories.settings_for(tmp_path / "instance", new_database()))
    result = app.test_cli_runner().invoke(cli, ["dicom", "listen", "--port", "0"])
    assert result.exit_code != 0
    assert "DICOM_ALLOWED_AE_TITLES is empty" in result.output

