"""DICOM uploads over HTTP against the running server, with real files from PyPI packages
(pydicom's bundled test files and pydicom-data's chest radiograph RG1_*)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file

from adapters.fhir.common import DCM, DICOM_UID, SNOMED
from tests.factories import dicom_sample, login, make_login, parse_fhir
from tests.integration.test_bad_uploads import stored
from tests.unit.adapters import hostile_files

FHIR = "application/fhir+json"


def headers_for(live, role: str, **kwargs) -> dict[str, str]:
    user = make_login(live.app, role, **kwargs)
    return {**login(live, user), "X-Patient": user.patient_id or ""}


def upload(live, headers: dict[str, str], data: bytes, name: str = "scan.dcm",
           **form: str) -> requests.Response:
    headers = {k: v for k, v in headers.items() if not k.startswith("X-")}
    return requests.post(live.fhir("ImagingStudy/$upload"), headers=headers, data=form,
                         files={"file": (name, data, "application/dicom")}, timeout=60)


def fhir_number(value) -> int:
    """What a DICOM IS number becomes in FHIR (unsignedInt): absent or negative gives 1."""
    return int(value) if value not in (None, "") and int(value) >= 0 else 1


def check_against_header(study, data: bytes) -> None:
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert study.identifier[0].system == DICOM_UID
    assert study.identifier[0].value == f"urn:oid:{header.StudyInstanceUID}"
    assert study.numberOfSeries == 1 and study.numberOfInstances == 1
    series = study.series[0]
    assert series.uid == header.SeriesInstanceUID
    assert (series.modality.system, series.modality.code) == (DCM, header.Modality)
    assert study.modality[0].code == header.Modality
    assert series.number == fhir_number(header.get("SeriesNumber"))
    instance = series.instance[0]
    assert instance.uid == header.SOPInstanceUID
    assert instance.sopClass.code == f"urn:oid:{header.SOPClassUID}"
    assert instance.number == fhir_number(header.get("InstanceNumber"))
    offset = header.get("TimezoneOffsetFromUTC") or "+0000"  # absent: taken as UTC
    zone = timezone((-1 if offset[0] == "-" else 1) * timedelta(
        hours=int(offset[1:3]), minutes=int(offset[3:5])))
    clock = header.StudyTime.replace(":", "")[:6].ljust(6, "0")
    expected = datetime.strptime(header.StudyDate + clock, "%Y%m%d%H%M%S").replace(tzinfo=zone)
    assert study.started == expected
    assert study.description == (header.get("StudyDescription") or None)


def test_chest_radiograph_upload_matches_its_header_and_is_classified(live_server):
    data = dicom_sample("RG1_UNCR.dcm")
    patient = headers_for(live_server, "patient", mrn="9RG1")  # RG1's PatientID
    response = upload(live_server, patient, data)
    assert response.status_code == 201, response.text
    study = parse_fhir(response.content, "ImagingStudy")
    check_against_header(study, data)
    assert study.subject.reference == f"Patient/{patient['X-Patient']}"
    body_site = study.series[0].bodySite
    assert (body_site.system, body_site.code) == (SNOMED, "51185008")
    assert study.series[0].modality.display == "Computed Radiography"

    doctor = headers_for(live_server, "doctor")
    doctor = {k: v for k, v in doctor.items() if not k.startswith("X-")}
    classified = requests.post(live_server.fhir(f"ImagingStudy/{study.id}/$classify"),
                               headers=doctor, timeout=120)
    assert classified.status_code == 201, classified.text
    observation = parse_fhir(classified.content, "Observation")
    assert observation.meta.security[0].code == "AIAST"
    assert observation.device.reference.startswith("Device/")
    assert all(c.code.coding[0].code == "111012" for c in observation.component)
    binary = requests.get(live_server.fhir(f"Binary/{_image_id(live_server, study.id)}"),
                          headers=doctor, timeout=30)
    assert binary.headers["Content-Type"] == "application/dicom"
    assert binary.content == data  # the original file is kept (stripping is off by default)


def _image_id(live, study_id: str) -> str:
    from csss_fhir.models import Scan, db

    with live.app.app_context():
        return db.session.get(Scan, study_id).image_id


@pytest.mark.parametrize("name", [
    "CT_small.dcm",  # CT, uncompressed
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
    "JPEG2000.dcm",  # JPEG 2000
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, colour
    "emri_small.dcm",  # multi-frame MR
    "RG1_J2KI.dcm",  # the chest radiograph, JPEG 2000 lossy
])
def test_sample_files_upload_as_imaging_studies_matching_their_headers(live_server, name):
    data = dicom_sample(name)
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    patient = headers_for(live_server, "patient", mrn=str(header.PatientID) or None)
    response = upload(live_server, patient, data)
    assert response.status_code == 201, response.text
    check_against_header(parse_fhir(response.content, "ImagingStudy"), data)


def unsupported_transfer_syntax() -> bytes:
    dataset = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def without_pixel_data() -> bytes:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelData  # Rows and Columns stay: the header still describes an image
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case, status, words", [
    ("no pixel data", 422, "Pixel Data"),
    ("truncated", 400, "truncated"),
    ("not DICOM, named .dcm", 415, "not"),
    ("MPEG2 transfer syntax", 415, "1.2.840.10008.1.2.4.100"),
    ("image header without pixel data", 422, "Pixel Data"),
    ("deflate bomb", 413, "inflates to more than"),
    ("20,000 nested sequences", 422, "nests sequences"),
    ("4096x4096 x 1000 frames", 400, "1000 frame"),
])
def test_bad_dicom_gets_its_4xx_and_nothing_is_stored(live_server, case, status, words):
    data = {"no pixel data": lambda: dicom_sample("rtplan.dcm"),
            "truncated": lambda: dicom_sample("RG1_UNCR.dcm")[:3_000_000],
            "not DICOM, named .dcm": lambda: b"DICM? no, plain text.\n" * 50,
            "MPEG2 transfer syntax": unsupported_transfer_syntax,
            "image header without pixel data": without_pixel_data,
            "deflate bomb": lambda: hostile_files.deflate_bomb(1 << 28),
            "20,000 nested sequences": lambda: hostile_files.deeply_nested(20_000),
            "4096x4096 x 1000 frames": lambda: hostile_files.declared_huge(4096, 4096, 1000),
            }[case]()
    patient = headers_for(live_server, "patient")
    before = stored(live_server.app)
    response = upload(live_server, patient, data, name="image.dcm")
    assert response.status_code == status, response.text
    assert words in parse_fhir(response.content, "OperationOutcome").issue[0].diagnostics
    assert stored(live_server.app) == before


def test_patient_id_mismatch_and_second_upload_of_a_study_are_409(live_server):
    data = dicom_sample("CT_small.dcm")
    other = headers_for(live_server, "patient", mrn="SOMEONE-ELSE")
    before = stored(live_server.app)
    mismatch = upload(live_server, other, data)
    assert mismatch.status_code == 409
    assert parse_fhir(mismatch.content, "OperationOutcome").issue[0].details.text == \
        "patient-mismatch"
    owner = headers_for(live_server, "patient", mrn="1CT1")
    assert upload(live_server, owner, data).status_code == 201
    after_first = stored(live_server.app)
    again = upload(live_server, owner, data)
    assert again.status_code == 409
    assert stored(live_server.app) == after_first != before
