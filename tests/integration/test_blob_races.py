"""Identical uploads racing each other never lose the stored image (issue 15 #6).

Before the fix, the loser of a race over one DICOM study deleted the blob it had written
first, which the winner had found and reused: 8 of 10 races on SQLite lost the image. Runs
on SQLite, and on PostgreSQL under scripts/with-postgres.sh (CSSS_TEST_DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import replace

import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.factories import login, make_login
from tests.servers import serve_app

ROUNDS = 10
RACERS = 6


def study_copy(template: pydicom.Dataset) -> bytes:
    """CT_small.dcm as a new study (new UIDs): the same bytes for every racer of a round."""
    template.StudyInstanceUID = generate_uid()
    template.SeriesInstanceUID = generate_uid()
    template.SOPInstanceUID = generate_uid()
    template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
    buffer = io.BytesIO()
    template.save_as(buffer)
    return buffer.getvalue()


def race_uploads(url: str, headers: dict[str, str], data: bytes) -> list[requests.Response]:
    barrier = threading.Barrier(RACERS)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def upload() -> None:
        barrier.wait()
        response = requests.post(url, headers=headers, timeout=60,
                                 files={"file": ("scan.dcm", data, "application/dicom")})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=upload) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "postgresql"])
def test_racing_identical_uploads_keep_every_stored_image(live_settings, backend):
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with serve_app(replace(live_settings, storage_backend=backend)) as live:
        patient = make_login(live.app, "patient", mrn=str(template.PatientID))
        headers = login(live, patient)
        doctor = login(live, make_login(live.app, "doctor"))
        uploaded: dict[str, str] = {}  # ImagingStudy id -> SHA-256 of the uploaded file
        for _ in range(ROUNDS):
            data = study_copy(template)
            responses = race_uploads(live.fhir("ImagingStudy/$upload"), headers, data)
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [201] + [409] * (RACERS - 1), statuses
            [winner] = [r for r in responses if r.status_code == 201]
            uploaded[winner.json()["id"]] = hashlib.sha256(data).hexdigest()

        from csss_fhir.models import Scan, db

        with live.app.app_context():
            images = {study_id: db.session.get(Scan, study_id).image_id
                      for study_id in uploaded}
        for study_id, digest in uploaded.items():
            image = requests.get(live.fhir(f"Binary/{images[study_id]}"), timeout=30,
                                 headers={**doctor, "Accept": "application/dicom"})
            assert image.status_code == 200, (study_id, image.status_code)
            assert hashlib.sha256(image.content).hexdigest() == digest
