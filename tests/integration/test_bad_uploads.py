"""Each bad upload gets its 4xx, an OperationOutcome, and leaves no row and no file."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from tests.factories import parse_fhir, xray_png
from tests.unit.adapters.test_images import png_header_claiming


def stored(app) -> tuple[int, int, int]:
    from csss_fhir.extensions import services
    from csss_fhir.models import Blob, Scan, db

    with app.app_context():
        scans = db.session.scalar(select(func.count()).select_from(Scan))
        blobs = db.session.scalar(select(func.count()).select_from(Blob))
        return scans, blobs, services().store.count()


def post_file(client, headers, data: bytes, name: str = "scan.png",
              mimetype: str = "image/png"):
    return client.post("/fhir/ImagingStudy/$upload", headers=headers,
                       data={"file": (io.BytesIO(data), name, mimetype)},
                       content_type="multipart/form-data")


def truncated_png() -> bytes:
    data = xray_png(256)
    return data[: len(data) // 2]


@pytest.mark.parametrize("case, data, status", [
    ("empty", b"", 400),
    ("text renamed .png", b"just some text, honestly\n" * 40, 415),
    ("truncated PNG", None, 400),
    ("20k x 20k PNG", None, 400),
    ("11 MB file", None, 413),
])
def test_bad_upload_is_refused_and_nothing_is_stored(app, client, as_role, case, data, status):
    headers = as_role("patient")
    if case == "truncated PNG":
        data = truncated_png()
    elif case == "20k x 20k PNG":
        data = png_header_claiming(20_000, 20_000)
    elif case == "11 MB file":
        data = xray_png() + b"\x00" * (11 * 1024 * 1024)
    before = stored(app)
    response = post_file(client, headers, data)
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = parse_fhir(response.data, "OperationOutcome")
    assert outcome.issue[0].diagnostics
    assert stored(app) == before


def test_wrong_content_type_is_415_and_nothing_is_stored(app, client, as_role):
    headers = as_role("patient")
    before = stored(app)
    response = client.post("/fhir/ImagingStudy/$upload", headers={
        **headers, "Content-Type": "image/png"}, data=xray_png())
    assert response.status_code == 415
    parse_fhir(response.data, "OperationOutcome")
    assert stored(app) == before


def test_claimed_content_type_is_ignored_for_a_real_png(app, client, as_role):
    response = post_file(client, as_role("patient"), xray_png(), name="scan.txt",
                         mimetype="text/plain")
    assert response.status_code == 201
    assert stored(app)[:2] == (1, 1)


def test_missing_file_part_is_400(client, as_role):
    response = client.post("/fhir/ImagingStudy/$upload", headers=as_role("patient"),
                           data={"description": "no file"}, content_type="multipart/form-data")
    assert response.status_code == 400
