from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from adapters.fhir.common import (
    DCM,
    FINDING_SYSTEM,
    SNOMED,
    fhir_date,
    finding_concept,
    finding_key,
    finding_labels_for_code,
    instant,
    meta,
    observation_code_matches,
    parse_reference,
    reference,
)
from tests.factories import ROW_UPDATED_AT, row


def test_instant_is_utc_with_the_stored_microseconds_and_z():
    local = datetime(2025, 3, 14, 12, 0, 1, 987654, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert instant(local) == "2025-03-14T06:30:01.987654Z"
    assert instant(datetime(2025, 1, 2, tzinfo=UTC)) == "2025-01-02T00:00:00.000000Z"


def test_fhir_date_is_iso():
    assert fhir_date(date(1990, 5, 7)) == "1990-05-07"


def test_meta_takes_the_row_version_unless_told_and_keeps_extra_keys():
    label = {"system": "s", "code": "c"}
    assert meta(row(version_id=3)) == {"versionId": "3", "lastUpdated": instant(ROW_UPDATED_AT)}
    assert meta(row(version_id=3), version_id=7, security=[label]) == {
        "versionId": "7", "lastUpdated": instant(ROW_UPDATED_AT), "security": [label]}


def test_reference_has_a_display_only_when_given():
    assert reference("Patient", "p1") == {"reference": "Patient/p1"}
    assert reference("Practitioner", "d1", "Dr. Ada") == {"reference": "Practitioner/d1",
                                                          "display": "Dr. Ada"}


@pytest.mark.parametrize(("value", "expected"), [
    ({"reference": "Patient/p1"}, "p1"),
    ({"reference": "https://fhir.example/fhir/Patient/p1/"}, "p1"),
    ({"reference": "Group/p1"}, None),
    ({"reference": "Patient/"}, None),
    ({"reference": 42}, None),
    ({"display": "no reference"}, None),
    ("Patient/p1", None),
    (None, None),
])
def test_parse_reference_takes_the_id_of_the_expected_type_only(value, expected):
    assert parse_reference(value, "Patient") == expected


def test_finding_key_ignores_case_underscores_and_spacing():
    assert finding_key("Viral_Pneumonia") == finding_key("  viral   PNEUMONIA ") == \
        "viral pneumonia"


def test_a_known_finding_has_snomed_first_and_always_our_own_code():
    concept = finding_concept("Viral_Pneumonia")
    assert concept["coding"] == [
        {"system": SNOMED, "code": "75570004", "display": "Viral pneumonia"},
        {"system": FINDING_SYSTEM, "code": "Viral_Pneumonia", "display": "Viral Pneumonia"},
    ]
    assert concept["text"] == "Viral Pneumonia"


def test_a_finding_without_a_standard_concept_carries_only_our_code():
    assert finding_concept("Lung_Opacity")["coding"] == [
        {"system": FINDING_SYSTEM, "code": "Lung_Opacity", "display": "Lung Opacity"}]


def test_finding_labels_for_a_code_follow_the_system():
    covid = "882784691000119100"
    assert finding_labels_for_code(SNOMED, covid) == ["covid", "covid-19"]
    assert finding_labels_for_code(FINDING_SYSTEM, covid) == [covid]
    assert finding_labels_for_code(None, "Normal") == ["normal"]
    assert finding_labels_for_code(None, "17621005") == ["17621005", "normal"]
    assert finding_labels_for_code("http://other.example", "Normal") == []


def test_observation_code_matches_only_the_dicom_finding_code():
    assert observation_code_matches(None, "121071")
    assert observation_code_matches(DCM, "121071")
    assert not observation_code_matches(SNOMED, "121071")
    assert not observation_code_matches(DCM, "121072")
