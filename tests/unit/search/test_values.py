"""The FHIR value rules (csss_fhir/search/values.py), without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csss_fhir.errors import InvalidInputError
from csss_fhir.search.values import date_range, reference_id, split_or, token_parts


def test_comma_is_or_unless_escaped():
    assert split_or("final,preliminary") == ["final", "preliminary"]
    assert split_or(r"a\,b,c") == ["a,b", "c"]
    assert split_or(",") == []


@pytest.mark.parametrize("value, expected", [
    ("urn:test|A1", ("urn:test", "A1")),
    ("|A1", ("", "A1")),   # no system at all
    ("A1", (None, "A1")),  # any system
])
def test_token_system_and_code(value, expected):
    assert token_parts(value) == expected


@pytest.mark.parametrize("value, prefix, start, end", [
    ("2024", "eq", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
    ("ge2024-12", "ge", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
    ("lt2024-02-29", "lt", datetime(2024, 2, 29, tzinfo=UTC),
     datetime(2024, 3, 1, tzinfo=UTC)),
    ("sa2024-05-01T10:00:00Z", "sa", datetime(2024, 5, 1, 10, tzinfo=UTC),
     datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)),
])
def test_a_date_is_a_range_at_its_own_precision(value, prefix, start, end):
    assert date_range(value) == (prefix, start, end)


@pytest.mark.parametrize("value", ["yesterday", "2024-13", "xx2024", "2024-05-01 10:00"])
def test_a_malformed_date_names_the_accepted_forms(value):
    with pytest.raises(InvalidInputError, match="YYYY, YYYY-MM, YYYY-MM-DD"):
        date_range(value)


def test_reference_accepts_id_type_and_url_of_the_expected_type():
    assert reference_id("p1", "Patient") == "p1"
    assert reference_id("Patient/p1", "Patient") == "p1"
    assert reference_id("https://example.org/fhir/Patient/p1/", "Patient") == "p1"
    with pytest.raises(InvalidInputError, match="expected a reference to Patient"):
        reference_id("Device/d1", "Patient")
    with pytest.raises(InvalidInputError, match="got :Device"):
        reference_id("p1", "Patient", "Device")


@pytest.mark.parametrize("value", ["9999-12-31", "9999-12", "9999", "sa9999-12-31",
                                   "0001-01-01T00:00:00+14:00", "gt9999-12-31T23:59:59-14:00",
                                   "le9999-12-31T23:59:59.999999Z", "eb0001-01-01"])
def test_dates_at_the_ends_of_the_calendar_are_clamped_not_an_overflow(value):
    _, start, end = date_range(value)
    assert start.tzinfo is not None and end.tzinfo is not None and start <= end


@pytest.mark.parametrize("query", ["started=9999-12-31", "started=0001-01-01T00:00:00%2B14:00",
                                   "started=sa9999-12-31"])
def test_extreme_date_searches_answer_200(client, as_role, query):
    response = client.get(f"/fhir/ImagingStudy?{query}", headers=as_role("doctor"))
    assert response.status_code == 200, response.get_data(as_text=True)
