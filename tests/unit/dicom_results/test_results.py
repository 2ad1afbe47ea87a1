"""dicom_results.results: a release files the AI result as an SR and a Grad-CAM SC in the
scan's own study; WADO-RS retrieves them and QIDO-RS lists them (issue 17 item 3)."""

from __future__ import annotations

import io
import time

import pydicom
from sqlalchemy import select

from adapters import dicom_sr
from csss_fhir import workflow
from csss_fhir.dicom_results import results
from csss_fhir.dicomweb.multipart import parse_related
from csss_fhir.extensions import services
from csss_fhir.models import DicomResult, PacsExport, Report, Scan
from tests.factories import actor_for, make_scan, make_user, radiograph, xray_png
from tests.unit.dicomweb.test_views import DICOM_JSON, system_headers


def released(session, *, image: bytes | None = None, patient=None) -> tuple[Scan, Report]:
    scan_id, _ = make_scan("REPORT_READY", image=image, patient=patient)
    scan = session.get(Scan, scan_id)
    return scan, scan.report


def test_a_release_files_an_sr_and_the_gradcam_in_the_scans_study(session):
    scan, report = released(session)
    rows = results.of_report(session, report.id, 1)
    assert [r.kind for r in rows] == ["sr", "sc"]
    store = services().store
    for row in rows:
        data = store.get(row.image.sha256)
        dataset = pydicom.dcmread(io.BytesIO(data))
        assert dataset.StudyInstanceUID == scan.study_uid  # the upload's generated study
        assert dataset.SeriesInstanceUID == row.series_uid != scan.series_uid
        assert dataset.SOPInstanceUID == row.instance_uid
        assert dicom_sr.check(data) == []
    sr = pydicom.dcmread(io.BytesIO(store.get(rows[0].image.sha256)))
    doctor = scan.review.doctor.name
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == \
        dicom_sr.person_name(doctor)
    assert session.scalars(select(PacsExport)).all() == []  # no PACS_DESTINATION


def chest_radiograph(mrn: str) -> bytes:
    """A DX instance whose pixels are the test chest X-ray (noise is "not assessable")."""
    import numpy as np
    from PIL import Image

    dataset = pydicom.dcmread(io.BytesIO(radiograph(mrn, modality="DX", size=256)))
    with Image.open(io.BytesIO(xray_png(256))) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.uint16) * 16
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_dicom_scan_gets_its_gradcam_from_the_rendered_instance(session):
    patient = make_user("patient", mrn="MRN-DCM")[0]
    scan, report = released(session, image=chest_radiograph("MRN-DCM"), patient=patient)
    assert scan.source_format == "dicom" and scan.prediction.assessable
    assert [r.kind for r in results.of_report(session, report.id, 1)] == ["sr", "sc"]


def test_an_approved_amendment_files_a_new_sr_with_the_corrected_finding(session):
    import highdicom as hd

    scan, report = released(session)
    svc = services()
    workflow.amend(session, actor_for(make_user("doctor")[0]), report.id,
                   note="Opacity missed.", finding="Lung_Opacity")
    workflow.approve_amendment(session, svc, actor_for(make_user("admin")[0]), report.id)
    rows = results.of_report(session, report.id, 2)
    assert [r.kind for r in rows] == ["sr", "sc"]
    assert len(session.scalars(select(DicomResult)).all()) == 4  # version 1 is kept
    sr = hd.sr.srread(io.BytesIO(svc.store.get(rows[0].image.sha256)))
    _, verified = sr.content.get_image_measurement_groups()
    assert verified.finding_type.meaning == "Lung Opacity"
    assert sr.InstanceNumber == 2


def test_wado_rs_retrieves_and_qido_rs_lists_the_results(app, client, runner):
    with app.app_context():
        scan, report = released(_session())
        study = scan.study_uid
        sr, sc = ((r.series_uid, r.instance_uid) for r in results.of_report(
            _session(), report.id, 1))
    headers = system_headers(client, runner, "system/ImagingStudy.read")
    studies = client.get(f"/dicomweb/studies?StudyInstanceUID={study}",
                         headers={**headers, "Accept": DICOM_JSON})
    assert studies.status_code == 200, studies.get_data(as_text=True)
    [found] = [pydicom.Dataset.from_json(item) for item in studies.get_json()]
    assert list(found.ModalitiesInStudy) == ["OT", "SR"]
    assert found.NumberOfStudyRelatedInstances == 2 == found.NumberOfStudyRelatedSeries
    instances = client.get(f"/dicomweb/studies/{study}/instances",
                           headers={**headers, "Accept": DICOM_JSON})
    listed = {pydicom.Dataset.from_json(i).SOPInstanceUID for i in instances.get_json()}
    assert listed == {sr[1], sc[1]}  # the JPEG upload itself is no DICOM instance
    only_sr = client.get(f"/dicomweb/studies/{study}/series?Modality=SR",
                         headers={**headers, "Accept": DICOM_JSON})
    assert [pydicom.Dataset.from_json(i).SeriesInstanceUID
            for i in only_sr.get_json()] == [sr[0]]
    retrieved = client.get(f"/dicomweb/studies/{study}", headers={
        **headers, "Accept": 'multipart/related; type="application/dicom"'})
    assert retrieved.status_code == 200
    parts = parse_related(retrieved.data, retrieved.headers["Content-Type"])
    uids = {pydicom.dcmread(io.BytesIO(p.data)).SOPInstanceUID for p in parts}
    assert uids == {sr[1], sc[1]}
    one = client.get(f"/dicomweb/studies/{study}/series/{sr[0]}/instances/{sr[1]}/metadata",
                     headers={**headers, "Accept": DICOM_JSON})
    assert pydicom.Dataset.from_json(one.get_json()[0]).Modality == "SR"


def test_another_patient_cannot_retrieve_the_results(app, client, as_role):
    with app.app_context():
        scan, _ = released(_session())
        study = scan.study_uid
    response = client.get(f"/dicomweb/studies/{study}", headers=as_role("patient"))
    assert response.status_code == 404


def test_building_the_results_of_a_release_is_timed(session):
    scan, report = released(session)
    svc = services()
    png = svc.store.get(scan.image.sha256)
    from csss_fhir.reports.scan_images import gradcam_overlay

    gradcam = gradcam_overlay(svc.classifier, png, scan.prediction.top_class)
    started = time.perf_counter()
    runs = 5
    for _ in range(runs):
        dicom_sr.build(results.values(scan, report, gradcam))
    per_release = (time.perf_counter() - started) * 1000 / runs
    print(f"SR+SC build per release: {per_release:.1f} ms (Grad-CAM "
          f"{'included' if gradcam else 'unavailable'})")
    assert per_release < 2000


def _session():
    from csss_fhir.models import db

    return db.session
