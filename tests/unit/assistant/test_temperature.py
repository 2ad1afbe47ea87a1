"""Temperatures in °C and °F, and the threshold for a baby, a child and anybody."""

from __future__ import annotations

import pytest

from csss_fhir.assistant import clauses
from csss_fhir.assistant.temperature import (
    ANYONE_FEVER_C,
    BABY_FEVER_C,
    CHILD_FEVER_C,
    readings,
    threshold,
)


def read(text: str) -> list[float]:
    words = set(clauses.words(clauses.plain(text)))
    return [round(r.celsius, 1) for r in readings(clauses.split(text), words)]


@pytest.mark.parametrize("text, celsius", [
    ("my 2 yr old is 104F", [40.0]), ("a temp of 39.8C", [39.8]), ("temperature of 39,6", [39.6]),
    ("he is 40 degrees", [40.0]), ("burning up 103", [39.4]), ("fever 38.5 then 39", [38.5, 39.0]),
    ("100.4 \u00b0F", [38.0]), ("normal now (36.8C)", [36.8])])
def test_a_temperature_is_read_in_either_unit(text, celsius):
    assert read(text) == celsius


@pytest.mark.parametrize("text", [
    "my 40 year old husband has a fever", "room 39 on the second floor", "500 mg of fever pills",
    "a fever for 40 days", "my 38 yo wife has a temp", "fever since 2019"])
def test_ages_doses_times_and_other_numbers_are_not_temperatures(text):
    assert read(text) == []


@pytest.mark.parametrize("text, limit", [
    ("baby 6 weeks old", BABY_FEVER_C), ("my newborn", BABY_FEVER_C), ("my baby", BABY_FEVER_C),
    ("my 8 month old baby", CHILD_FEVER_C), ("my 4yo", CHILD_FEVER_C),
    ("my son", CHILD_FEVER_C), ("my 10 year old", CHILD_FEVER_C),
    ("my 40 year old husband", ANYONE_FEVER_C), ("I", ANYONE_FEVER_C)])
def test_the_threshold_is_for_the_youngest_person_named(text, limit):
    plain = clauses.plain(text)
    assert threshold(plain, set(clauses.words(plain))) == limit
