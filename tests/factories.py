"""Test data built through the real services (no copied setup, no mocks)."""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

from csss_fhir.settings import EndpointAllowlist, Settings

TEST_SECRET = "test-secret-key-" + "x" * 40
TEST_JWT_SECRET = "test-jwt-secret-" + "y" * 40
_counter = itertools.count(1)
RADIOGRAPH = Path(__file__).resolve().parent / "unit" / "ml" / "radiographs" / \
    "Normal__sky_039a0dbbcfb0.jpg"


def settings_for(instance: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "testing", "instance_path": instance, "secret_key": TEST_SECRET,
        "jwt_secret_key": TEST_JWT_SECRET, "database_url": database_url, "bcrypt_rounds": 4,
        "hospital_name": "St. Test General",
        # Jobs (classify on upload, send mail) run right after the commit that queues them,
        # in the same thread: tests see their effects deterministically.
        "jobs_mode": "inline",
        # The tests' rest-hook receivers listen on loopback over http.
        "subscription_endpoint_allowlist": EndpointAllowlist.parse("127.0.0.0/8, ::1"),
    }
    values.update(overrides)
    return Settings(**values)


def xray_png(size: int = 256, seed: int = 0) -> bytes:
    """A real, public chest X-ray as a size×size grayscale PNG, with faint seed-dependent noise.

    The demo model answers "Not assessable" for drawings, so the workflow needs a radiograph
    it accepts: a Kermany 2018 image, CC BY 4.0 (see tests/unit/ml/radiographs/README.md).
    """
    rng = np.random.default_rng(seed)
    with Image.open(RADIOGRAPH) as source:
        image = np.asarray(source.convert("L").resize((size, size), Image.BILINEAR), float)
    image = image + rng.normal(0, 2, (size, size))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def xray_jpeg(size: int = 256, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(xray_png(size, seed))).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def dicom_sample(name: str) -> bytes:
    """A DICOM file shipped by pydicom or pydicom-data; the test is skipped, with the reason,
    where it is not installed (tests never download)."""
    import pytest
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data); no download in tests")
    return Path(path).read_bytes()


def radiograph(patient_id: str, *, study_uid: str | None = None, modality: str = "CR",
               size: int = 64, seed: int = 0, study_date: str = "20250314") -> bytes:
    """A small DICOM radiograph (CR Image Storage, or DX/MR by `modality`), 16-bit grayscale,
    Explicit VR Little Endian, with fresh UIDs; `study_uid` puts it into a given study."""
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = {"CR": "1.2.840.10008.5.1.4.1.1.1", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
                 "MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}[modality]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = study_uid or generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality, dataset.BodyPartExamined = modality, "CHEST"
    dataset.PatientID, dataset.PatientName = patient_id, "Test^Patient"
    dataset.StudyDate, dataset.StudyTime = study_date, "093015"
    dataset.SeriesNumber, dataset.InstanceNumber = 1, 1
    dataset.SeriesDescription = "PA chest"
    dataset.Rows = dataset.Columns = size
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    pixels = np.random.default_rng(seed).integers(0, 4096, (size, size), dtype=np.uint16)
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_user(role: str, *, password: str | None = None, email: str | None = None,
              name: str | None = None, **kwargs: Any):
    """Create a user through the real account service (inside an app context)."""
    from csss_fhir.extensions import services
    from csss_fhir.models import db
    from csss_fhir.registration import create_user

    n = next(_counter)
    password = password or f"correct-horse-{n}-battery"
    user = create_user(
        db.session, email=email or f"{role}{n}@test.local", role=role,
        name=name or f"Test {role.title()} {n}", password=password,
        bcrypt_rounds=services().settings.bcrypt_rounds, **kwargs)
    return user, password


def outbox_messages(app) -> list:
    outbox = Path(app.instance_path) / "outbox"
    if not outbox.exists():
        return []
    files = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in files]


def latest_code(app, email: str) -> str:
    for message in reversed(outbox_messages(app)):
        if message["To"] == email:
            text = message.get_body(("plain",)).get_content()
            return re.search(r"\b(\d{6})\b", text).group(1)
    raise AssertionError(f"no code e-mailed to {email}")


@dataclass(frozen=True)
class UserLogin:
    """A user made for a test, as plain values that outlive the app context."""

    id: str
    email: str
    password: str
    role: str
    name: str
    patient_id: str | None


def make_login(app, role: str, **kwargs: Any) -> UserLogin:
    """`make_user` in `app`'s context, returned with the password it was given."""
    with app.app_context():
        user, password = make_user(role, **kwargs)
        return UserLogin(id=user.id, email=user.email, password=password, role=user.role,
                         name=user.name, patient_id=user.patient_id)


def login(client, user: UserLogin, *,
          one_time_code: Callable[[str], str] | None = None) -> dict[str, str]:
    """Sign `user` in through /auth/token and return the bearer header.

    `client` is Flask's test client or a running server (tests/servers.py LiveServer).
    An admin first asks /auth/otp for a code, read by `one_time_code(email)`: by default
    from the app's file outbox (the testing mail backend).
    """
    app = client.application if hasattr(client, "application") else client.app
    body: dict[str, str] = {"username": user.email, "password": user.password}
    if user.role == "admin":
        status, text, _ = _post_json(client, "/auth/otp", body)
        assert status == 202, text
        body["otp"] = (one_time_code or (lambda email: latest_code(app, email)))(user.email)
    status, text, answer = _post_json(client, "/auth/token", body)
    assert status == 200, text
    return {"Authorization": f"Bearer {answer['access_token']}"}


def _post_json(client, path: str, body: dict) -> tuple[int, str, Any]:
    if hasattr(client, "application"):  # Flask's test client
        response = client.post(path, json=body)
        return response.status_code, response.get_data(as_text=True), response.get_json()
    import requests

    response = requests.post(f"{client.url}{path}", json=body, timeout=30)
    return response.status_code, response.text, response.json()


def auth_headers(client, app, email: str, password: str, role: str) -> dict[str, str]:
    """`login` for credentials held apart (the app is the client's)."""
    return login(client, UserLogin(id="", email=email, password=password, role=role, name="",
                                   patient_id=None))


def parameters(**values: Any) -> dict[str, Any]:
    """A FHIR Parameters resource from keyword values."""
    params = []
    for name, value in values.items():
        key = "valueBoolean" if isinstance(value, bool) else "valueString"
        params.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": params}


def medication_request(patient_id: str, study_id: str, drug: str = "Amoxicillin") -> dict:
    return {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "subject": {"reference": f"Patient/{patient_id}"},
        "supportingInformation": [{"reference": f"ImagingStudy/{study_id}"}],
        "dosageInstruction": [{
            "route": {"text": "oral"},
            "timing": {"code": {"text": "three times a day"},
                       "repeat": {"boundsDuration": {"value": 7, "unit": "days"}}},
            "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
        }],
        "note": [{"text": "Take with food"}],
    }


def parse_fhir(body: bytes | str | dict, expected_type: str | None = None):
    """Parse a response body as the FHIR resource it claims to be (R4B models) and, where
    ../shared/fhir is present, check it against HL7's official R4 JSON Schema too."""
    from adapters.fhir.validation import model_class

    data = json.loads(body) if isinstance(body, (bytes, str)) else body
    resource_type = data["resourceType"]
    if expected_type:
        assert resource_type == expected_type, data
    resource = model_class(resource_type).model_validate(data)
    schema_check(data)
    return resource


_SCHEMA: dict | None = None
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shared" / "fhir" / "fhir.schema.json"


def schema_check(data: dict) -> None:
    global _SCHEMA
    if not SCHEMA_PATH.exists():
        return  # a fresh machine: fhir.resources alone validates
    import jsonschema

    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_PATH.read_text())
    if data.get("fhirVersion") == "4.0.1":
        # The 4.0 schema's version enum predates the 4.0.1 technical correction (API.md
        # mandates 4.0.1); every other rule of the schema still applies.
        data = {**data, "fhirVersion": "4.0.0"}
    schema = {"$ref": f"#/definitions/{data['resourceType']}",
              "definitions": _SCHEMA["definitions"]}
    jsonschema.Draft6Validator(schema).validate(data)


ROW_UPDATED_AT = datetime(2025, 3, 14, 9, 30, 15, 123456, tzinfo=UTC)


def row(**fields: Any) -> SimpleNamespace:
    """A plain stand-in for a database row, for adapters that only read its attributes
    (`version_id` 1 and `updated_at` ROW_UPDATED_AT unless given)."""
    return SimpleNamespace(**{"version_id": 1, "updated_at": ROW_UPDATED_AT, **fields})


def emitted(resource: Any, expected_type: str) -> dict:
    """What a client receives for an adapter's model (its JSON, as fhir_response sends it),
    checked to parse back as the R4B `expected_type`."""
    from adapters.fhir.validation import model_class

    data = json.loads(resource.model_dump_json())
    assert data["resourceType"] == expected_type, data
    model_class(expected_type).model_validate(data)
    return data


def actor_for(user):
    """The Actor a user's token would produce (with a fresh second factor)."""
    from csss_fhir.models import utcnow
    from csss_fhir.security.actor import Actor

    return Actor(role=user.role, user_id=user.id, name=user.name, patient_id=user.patient_id,
                 otp_verified_at=utcnow())


class HeldJobs(list):
    """A jobs runner that only keeps what it is given (see `held_jobs`)."""

    name = "held"

    def submit(self, job: str, key: str | None) -> None:
        self.append((job, key))

    def start(self) -> None:
        """Nothing runs."""


@contextmanager
def held_jobs(app) -> Iterator[HeldJobs]:
    """Within the block, jobs queued by commits are kept (in the yielded list), not run:
    for tests that need a scan still waiting for the AI, or that run jobs themselves."""
    previous = app.extensions["csss_jobs"]
    held = HeldJobs()
    app.extensions["csss_jobs"] = held
    try:
        yield held
    finally:
        app.extensions["csss_jobs"] = previous


def current_app_object():
    from flask import current_app

    return current_app._get_current_object()


def make_scan(state: str = "PENDING_AI", *, patient=None, image: bytes | None = None):
    """A scan driven through the real workflow commands up to `state` (in an app context).

    Returns the Scan's id and its patient user.
    """
    from csss_fhir import workflow
    from csss_fhir.extensions import services
    from csss_fhir.models import db
    from csss_fhir.workflow.states import ScanState

    order = list(ScanState)
    target = order.index(ScanState(state))
    svc = services()
    session = db.session
    patient = patient or make_user("patient")[0]
    request = workflow.UploadRequest(data=image or xray_png(), patient_id=None)
    if target == 0:  # keep the scan waiting: hold the classification job back
        with held_jobs(current_app_object()):
            scan = workflow.upload_scan(session, svc, actor_for(patient), request)
    else:  # the classification job runs inline right after the upload commits
        scan = workflow.upload_scan(session, svc, actor_for(patient), request)
    scan_id = scan.id
    if target >= 2:
        from csss_fhir.models import Scan

        label = session.get(Scan, scan_id).prediction
        finding = "Normal" if label.uncertain else None
        workflow.verify(session, actor_for(make_user("doctor")[0]), scan_id,
                        note="Verified in a test.", agree=not label.uncertain, finding=finding)
    if target >= 3:
        workflow.pharmacy_review(session, actor_for(make_user("pharmacist")[0]), scan_id,
                                 note="Reviewed in a test.")
    if target >= 4:
        workflow.approve(session, svc, actor_for(make_user("admin")[0]), scan_id)
    return scan_id, patient
