from __future__ import annotations

from datetime import UTC, datetime

from adapters.fhir.common import DCM, DICOM_UID, SNOMED
from adapters.fhir.imaging_study import SECONDARY_CAPTURE, body_site, to_fhir_imaging_study
from tests.factories import emitted, row

CREATED = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def scan(**fields):
    values = {"id": "scan-1", "patient_id": "pat-1", "status": "available", "modality": "DX",
              "study_uid": "1.2.3.4", "series_uid": "1.2.3.4.5", "instance_uid": "1.2.3.4.5.6",
              "sop_class_uid": "1.2.840.10008.5.1.4.1.1.1.1", "series_number": 2,
              "instance_number": 7, "body_site": "CHEST", "description": "PA chest",
              "started": datetime(2025, 3, 13, 22, 15, tzinfo=UTC), "created_at": CREATED}
    return row(**{**values, **fields})


def test_a_dicom_scan_carries_its_uids_modality_numbers_and_subject():
    data = emitted(to_fhir_imaging_study(scan()), "ImagingStudy")
    assert data["status"] == "available"
    assert data["identifier"] == [{"system": DICOM_UID, "value": "urn:oid:1.2.3.4"}]
    assert data["subject"] == {"reference": "Patient/pat-1"}
    assert data["modality"] == [{"system": DCM, "code": "DX",
                                 "display": "Digital Radiography"}]
    assert datetime.fromisoformat(data["started"]) == datetime(2025, 3, 13, 22, 15, tzinfo=UTC)
    assert data["description"] == "PA chest"
    [series] = data["series"]
    assert (series["uid"], series["number"], series["modality"]["code"]) == ("1.2.3.4.5", 2, "DX")
    assert series["bodySite"] == {"system": SNOMED, "code": "51185008",
                                  "display": "Thoracic structure"}
    [instance] = series["instance"]
    assert instance["uid"] == "1.2.3.4.5.6" and instance["number"] == 7
    assert instance["sopClass"] == {"system": "urn:ietf:rfc:3986",
                                    "code": "urn:oid:1.2.840.10008.5.1.4.1.1.1.1"}


def test_an_image_upload_is_a_secondary_capture_numbered_one_started_when_uploaded():
    data = emitted(to_fhir_imaging_study(scan(
        modality="OT", sop_class_uid=None, series_number=None, instance_number=-3,
        body_site=None, description=None, started=None, status="registered")), "ImagingStudy")
    [series] = data["series"]
    assert series["instance"][0]["sopClass"]["code"] == f"urn:oid:{SECONDARY_CAPTURE}"
    assert series["number"] == 1 and series["instance"][0]["number"] == 1
    assert datetime.fromisoformat(data["started"]) == CREATED
    assert "bodySite" not in series and "description" not in data
    assert data["status"] == "registered"


def test_an_unknown_modality_and_body_part_keep_their_dicom_words():
    data = emitted(to_fhir_imaging_study(scan(modality="ZZ", body_site="KNEE")), "ImagingStudy")
    assert data["modality"][0] == {"system": DCM, "code": "ZZ", "display": "ZZ"}
    assert data["series"][0]["bodySite"] == {"display": "KNEE"}


def test_body_site_ignores_case_and_spaces():
    assert body_site(" thorax ")["code"] == "51185008"


def test_imaging_study_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_imaging_study(scan()), "ImagingStudy"))
