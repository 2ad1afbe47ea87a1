"""Clauses, and the narrow rule that lets a symptom weeks or more in the past go."""

from __future__ import annotations

import pytest

from csss_fhir.assistant.clauses import distant_past, recurred, split


def test_clauses_end_at_punctuation_and_new_thoughts_but_not_at_a_decimal():
    clauses = split("I had a seizure years ago, now my chest hurts. Temp 39,6 too!")
    assert [c.strip() for c in clauses] == ["i had a seizure years ago", "now my chest hurts",
                                            "temp 39,6 too"]
    assert [c.strip() for c in split("fever last week but fine when is it ready")] == [
        "fever last week", "but fine", "when is it ready"]


@pytest.mark.parametrize("clause", [
    "my child had a fever last week", "i had a seizure as a child", "dad had a stroke years ago",
    "the chest pain i had last month has gone", "i was short of breath in 2019",
    "our baby had a temp of 38.5 two weeks ago"])
def test_a_time_a_week_or_more_back_is_the_distant_past(clause):
    assert distant_past(clause)


@pytest.mark.parametrize("clause", [
    "i fainted this morning", "coughed blood three days ago", "chest pain since last week",
    "coughing blood for the last month", "my chest hurts like it did last month",
    "my son has a fever like last week", "i still have chest pain from last year",
    "it started two weeks ago", "she had a fit yesterday", "chest pain in the last week"])
def test_anything_recent_or_ongoing_is_not(clause):
    assert not distant_past(clause)


def test_a_symptom_that_came_back_is_never_let_go():
    assert recurred("I had chest pain last month and it's back")
    assert recurred("breathless last year, getting worse")
    assert not recurred("my x-ray came out blurry")
