"""/dicomweb through Flask's test client: STOW-RS, QIDO-RS, WADO-RS, scopes, isolation, audit."""

from __future__ import annotations

import io
import uuid

import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from sqlalchemy import select

from csss_fhir.cli import cli
from csss_fhir.dicomweb.multipart import build_related, parse_related
from csss_fhir.models import AuditRecord, Scan, db
from tests.factories import parse_fhir, radiograph

DICOM_JSON = "application/dicom+json"


def system_headers(client, runner, scopes: str) -> dict[str, str]:
    result = runner.invoke(cli, args=["clients", "create", f"pacs-{uuid.uuid4().hex[:8]}",
                                      "--scopes", scopes])
    assert result.exit_code == 0, result.output
    ids = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    token = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": ids["client_id"],
        "client_secret": ids["client_secret"]}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def pacs(client, runner):
    return system_headers(client, runner, "system/ImagingStudy.write system/ImagingStudy.read")


def stow(client, headers, *instances: bytes, path: str = "/dicomweb/studies"):
    body, content_type = build_related(list(instances))
    return client.post(path, data=body, headers={**headers, "Content-Type": content_type,
                                                 "Accept": DICOM_JSON})


def response_dataset(response) -> Dataset:
    assert response.content_type == DICOM_JSON
    return Dataset.from_json(response.get_json())


def test_stow_stores_radiographs_and_reports_each_instance(client, pacs, as_role):
    as_role("patient", mrn="MRN-1")
    first, second = radiograph("MRN-1"), radiograph("MRN-1", seed=1)
    response = stow(client, pacs, first, second)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response_dataset(response)
    stored = {item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence}
    expected = {pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID for d in (first, second)}
    assert stored == expected and "FailedSOPSequence" not in result
    url = result.ReferencedSOPSequence[0].RetrieveURL
    # BASE_URL (in development http://127.0.0.1:5000), never the Host header (localhost)
    assert url.startswith("http://127.0.0.1:5000/dicomweb/studies/") and "/instances/" in url


def test_stow_twice_stores_once(app, client, pacs, as_role):
    as_role("patient", mrn="MRN-2")
    instance = radiograph("MRN-2")
    assert stow(client, pacs, instance).status_code == 200
    again = stow(client, pacs, instance)
    assert again.status_code == 200
    assert len(response_dataset(again).ReferencedSOPSequence) == 1
    with app.app_context():
        assert len(db.session.scalars(select(Scan)).all()) == 1


@pytest.mark.parametrize("make, reason", [
    (lambda: radiograph("MRN-3", modality="MR"), 0xC000),  # not a radiograph
    (lambda: radiograph("NOBODY"), 0xA900),  # no Patient has this PatientID
    (lambda: b"not dicom at all", 0xC000),
])
def test_stow_refusals_carry_failure_reasons(client, pacs, as_role, make, reason):
    as_role("patient", mrn="MRN-3")
    response = stow(client, pacs, make())
    assert response.status_code == 409
    failed = response_dataset(response).FailedSOPSequence
    assert [item.FailureReason for item in failed] == [reason]
    assert response.headers["Warning"].startswith("299 ")


def test_stow_some_stored_some_failed_is_202(client, pacs, as_role):
    as_role("patient", mrn="MRN-4")
    response = stow(client, pacs, radiograph("MRN-4"), radiograph("MRN-4", modality="CT"))
    assert response.status_code == 202
    result = response_dataset(response)
    assert len(result.ReferencedSOPSequence) == 1 and len(result.FailedSOPSequence) == 1


def test_stow_to_a_study_refuses_instances_of_another(client, pacs, as_role):
    as_role("patient", mrn="MRN-5")
    response = stow(client, pacs, radiograph("MRN-5"), path="/dicomweb/studies/1.2.3")
    assert response.status_code == 409
    assert response_dataset(response).FailedSOPSequence[0].FailureReason == 0xA900


def test_stow_needs_the_write_scope_and_multipart(client, runner, as_role):
    reader = system_headers(client, runner, "system/*.read")
    as_role("patient", mrn="MRN-6")
    assert stow(client, reader, radiograph("MRN-6")).status_code == 403
    assert stow(client, {}, radiograph("MRN-6")).status_code == 401
    wrong = client.post("/dicomweb/studies", data=b"x", headers={
        **reader, "Content-Type": "application/dicom"})
    assert wrong.status_code in (403, 415)


def test_qido_finds_studies_series_and_instances(client, pacs, as_role):
    as_role("patient", mrn="MRN-7")
    as_role("patient", mrn="MRN-8")
    stow(client, pacs, radiograph("MRN-7", study_date="20250101"))
    stow(client, pacs, radiograph("MRN-8", study_date="20250301", modality="DX"))
    every = client.get("/dicomweb/studies", headers=pacs)
    assert every.status_code == 200 and len(every.get_json()) == 2
    by_patient = client.get("/dicomweb/studies?PatientID=MRN-7", headers=pacs).get_json()
    assert [s["00100020"]["Value"] for s in by_patient] == [["MRN-7"]]
    ranged = client.get("/dicomweb/studies?StudyDate=20250201-20250331", headers=pacs)
    assert [s["00080061"]["Value"] for s in ranged.get_json()] == [["DX"]]
    assert client.get("/dicomweb/studies?StudyDate=20250401-", headers=pacs).status_code == 204
    by_modality = client.get("/dicomweb/studies?ModalitiesInStudy=CR", headers=pacs).get_json()
    study_uid = by_modality[0]["0020000D"]["Value"][0]
    assert client.get(f"/dicomweb/studies?StudyInstanceUID={study_uid}",
                      headers=pacs).get_json() == by_modality
    page = client.get("/dicomweb/studies?limit=1&offset=1", headers=pacs)
    assert len(page.get_json()) == 1 and "Warning" not in page.headers
    first = client.get("/dicomweb/studies?limit=1", headers=pacs)
    assert "offset=1" in first.headers["Warning"]
    series = client.get(f"/dicomweb/studies/{study_uid}/series", headers=pacs).get_json()
    series_uid = series[0]["0020000E"]["Value"][0]
    instances = client.get(
        f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances"
        "?includefield=SeriesDescription&includefield=00180015", headers=pacs).get_json()
    assert instances[0]["0008103E"]["Value"] == ["PA chest"]
    assert instances[0]["00180015"]["Value"] == ["CHEST"]
    assert instances[0]["00080016"]["Value"] == ["1.2.840.10008.5.1.4.1.1.1"]


@pytest.mark.parametrize("query", ["Foo=1", "StudyDate=2025", "limit=0", "includefield=Nope"])
def test_qido_refuses_what_it_cannot_match(client, pacs, query):
    response = client.get(f"/dicomweb/studies?{query}", headers=pacs)
    assert response.status_code == 400
    assert parse_fhir(response.get_data(), "OperationOutcome")


def test_wado_retrieves_instances_metadata_and_rendered(client, pacs, as_role):
    as_role("patient", mrn="MRN-9")
    instance = radiograph("MRN-9")
    header = pydicom.dcmread(io.BytesIO(instance))
    stow(client, pacs, instance)
    base = (f"/dicomweb/studies/{header.StudyInstanceUID}/series/"
            f"{header.SeriesInstanceUID}/instances/{header.SOPInstanceUID}")
    for path in (f"/dicomweb/studies/{header.StudyInstanceUID}", base):
        response = client.get(path, headers={
            **pacs, "Accept": 'multipart/related; type="application/dicom"'})
        assert response.status_code == 200
        parts = parse_related(response.get_data(), response.headers["Content-Type"])
        assert [p.data for p in parts] == [instance]
    metadata = client.get(base + "/metadata", headers=pacs)
    assert metadata.content_type == DICOM_JSON
    assert metadata.get_json()[0]["00080018"]["Value"] == [header.SOPInstanceUID]
    assert "7FE00010" not in metadata.get_json()[0]
    for media_type, magic in (("image/png", b"\x89PNG"), ("image/jpeg", b"\xff\xd8")):
        rendered = client.get(base + "/rendered", headers={**pacs, "Accept": media_type})
        assert rendered.content_type == media_type and rendered.data.startswith(magic)
        assert Image.open(io.BytesIO(rendered.data)).size == (64, 64)
    refused = client.get(base, headers={**pacs, "Accept": "application/pdf"})
    assert refused.status_code == 406


def test_patients_see_only_their_own_studies(app, client, pacs, as_role):
    mine = as_role("patient", mrn="MRN-10")
    as_role("patient", mrn="MRN-11")
    own, other = radiograph("MRN-10"), radiograph("MRN-11")
    stow(client, pacs, own, other)
    studies = client.get("/dicomweb/studies", headers=mine).get_json()
    assert [s["00100020"]["Value"] for s in studies] == [["MRN-10"]]
    other_uid = pydicom.dcmread(io.BytesIO(other)).StudyInstanceUID
    assert client.get(f"/dicomweb/studies/{other_uid}", headers=mine).status_code == 404
    assert client.get(f"/dicomweb/studies/{other_uid}/metadata",
                      headers=mine).status_code == 404


def test_reads_and_stores_are_audited_per_patient(app, client, pacs, as_role):
    as_role("patient", mrn="MRN-12")
    stow(client, pacs, radiograph("MRN-12"))
    client.get("/dicomweb/studies?PatientID=MRN-12", headers=pacs)
    with app.app_context():
        rows = db.session.scalars(select(AuditRecord).where(
            AuditRecord.description.like("%/dicomweb/%"))).all()
        kinds = sorted((r.type_code, r.action) for r in rows)
        assert kinds == [("110110", "C"), ("110112", "E")]
        assert all(r.patient_id for r in rows)
        assert next(r for r in rows if r.type_code == "110112").query == "PatientID=MRN-12"


def test_imaging_study_names_the_wado_rs_endpoint(client, pacs, as_role):
    headers = as_role("patient", mrn="MRN-13")
    stow(client, pacs, radiograph("MRN-13"))
    bundle = parse_fhir(client.get("/fhir/ImagingStudy", headers=headers).get_data(), "Bundle")
    study = bundle.entry[0].resource
    endpoint = study.contained[0]
    assert study.endpoint[0].reference == f"#{endpoint.id}"
    assert endpoint.connectionType.code == "dicom-wado-rs"
    assert endpoint.address.endswith("/dicomweb")
