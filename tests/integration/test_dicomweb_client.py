"""DICOMweb against the running server with dicomweb-client, the reference client: store,
search, retrieve and render, as a PACS or viewer would, with a SMART system token."""

from __future__ import annotations

import io
import uuid

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from csss_fhir.cli import cli
from tests.factories import dicom_sample, make_login, parse_fhir, radiograph


def system_token(live, scopes: str) -> str:
    result = live.app.test_cli_runner().invoke(
        cli, ["clients", "create", f"pacs-{uuid.uuid4().hex[:8]}", "--scopes", scopes])
    assert result.exit_code == 0, result.output
    ids = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    response = requests.post(live("/auth/token"), data={
        "grant_type": "client_credentials", **ids}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def pacs(live_server) -> DICOMwebClient:
    token = system_token(live_server, "system/ImagingStudy.write system/ImagingStudy.read")
    return DICOMwebClient(url=live_server("/dicomweb"),
                          headers={"Authorization": f"Bearer {token}"})


def test_store_search_retrieve_and_render_with_the_reference_client(live_server, pacs):
    make_login(live_server.app, "patient", mrn="9RG1")  # RG1's PatientID
    chest = pydicom.dcmread(io.BytesIO(dicom_sample("RG1_J2KR.dcm")))
    result = pacs.store_instances([chest])
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [
        chest.SOPInstanceUID]

    studies = pacs.search_for_studies(search_filters={"PatientID": "9RG1"},
                                      fields=["StudyDescription"])
    assert [s["0020000D"]["Value"][0] for s in studies] == [chest.StudyInstanceUID]
    series = pacs.search_for_series(chest.StudyInstanceUID)
    assert series[0]["0020000E"]["Value"] == [chest.SeriesInstanceUID]
    instances = pacs.search_for_instances(chest.StudyInstanceUID, chest.SeriesInstanceUID)
    assert instances[0]["00080018"]["Value"] == [chest.SOPInstanceUID]

    uids = (chest.StudyInstanceUID, chest.SeriesInstanceUID, chest.SOPInstanceUID)
    as_sent = pacs.retrieve_instance(*uids)  # transfer-syntax=*: as stored
    assert as_sent.file_meta.TransferSyntaxUID == chest.file_meta.TransferSyntaxUID
    assert (as_sent.pixel_array == chest.pixel_array).all()
    default = pacs.retrieve_instance(*uids, media_types=(("application/dicom",
                                                          "1.2.840.10008.1.2.1"),))
    assert default.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (default.pixel_array == chest.pixel_array).all()  # lossless: the same pixels
    metadata = pacs.retrieve_instance_metadata(*uids)
    assert metadata["00080060"]["Value"] == ["CR"] and "7FE00010" not in metadata
    study = pacs.retrieve_study(chest.StudyInstanceUID)
    assert [d.SOPInstanceUID for d in study] == [chest.SOPInstanceUID]
    rendered = pacs.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(rendered)).size == (chest.Columns, chest.Rows)


def test_a_refused_instance_comes_back_in_the_failed_sequence(live_server, pacs):
    make_login(live_server.app, "patient", mrn="4MR1")
    make_login(live_server.app, "patient", mrn="CR-OK")
    mr = pydicom.dcmread(io.BytesIO(dicom_sample("MR_small.dcm")))
    cr = pydicom.dcmread(io.BytesIO(radiograph("CR-OK")))
    result = pacs.store_instances([cr, mr])  # 202: stored some
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [
        cr.SOPInstanceUID]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason)
            for i in result.FailedSOPSequence] == [(mr.SOPInstanceUID, 0xC000)]


def test_the_imaging_study_points_at_the_wado_rs_base(live_server, pacs):
    make_login(live_server.app, "patient", mrn="EP-1")
    instance = pydicom.dcmread(io.BytesIO(radiograph("EP-1")))
    pacs.store_instances([instance])
    reader = system_token(live_server, "system/*.read")
    bundle = requests.get(live_server.fhir("ImagingStudy"), timeout=30, headers={
        "Authorization": f"Bearer {reader}", "Accept": "application/fhir+json"})
    study = parse_fhir(bundle.content, "Bundle").entry[0].resource
    address = study.contained[0].address
    assert address == live_server("/dicomweb")  # absolute: the live server sets BASE_URL
    client = DICOMwebClient(url=address,
                            headers={"Authorization": f"Bearer {reader}"})
    found = client.retrieve_instance(instance.StudyInstanceUID, instance.SeriesInstanceUID,
                                     instance.SOPInstanceUID)
    assert found.SOPInstanceUID == instance.SOPInstanceUID
