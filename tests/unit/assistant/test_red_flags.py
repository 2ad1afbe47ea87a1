"""Red-flag matching: normalisation, fuzzy words, and phrases within a window."""

from __future__ import annotations

import pytest

from csss_fhir.assistant.red_flags import find_red_flag, matches_word, normalise


def test_normalise_drops_case_accents_apostrophes_and_punctuation():
    assert normalise("Can't BREATHE!! Fièvre, 40°C") == ["cant", "breathe", "fievre", "40", "c"]
    assert normalise("I\u2019m dizzy") == ["im", "dizzy"]


@pytest.mark.parametrize("word, wanted", [("chset", "chest"), ("breth", "breathe"),
                                          ("bloood", "blood"), ("feaver", "fever")])
def test_a_slip_in_a_long_word_still_matches(word, wanted):
    assert matches_word(word, wanted)


@pytest.mark.parametrize("word, wanted", [("does", "dose"), ("painted", "fainted"),
                                          ("fit", "fat"), ("breathe", "breathless")])
def test_other_words_do_not_match(word, wanted):
    assert not matches_word(word, wanted, 0.88)


def test_a_phrase_matches_in_any_order_but_only_nearby():
    assert find_red_flag("pain, terrible, in my chest") is not None
    assert find_red_flag("my chest x-ray was taken in March and the pain in my knee "
                         "is better now") is None


def test_negation_does_not_hide_a_red_flag():
    assert find_red_flag("no idea why but I can't breathe") is not None


def test_small_words_do_not_count_towards_the_window():
    assert find_red_flag("heavy feeling in the center of my chest") is not None
    assert find_red_flag("coughed up a mouthful of blood") is not None


def test_negations_match_only_exactly():
    assert not matches_word("does", "doesnt")
    assert find_red_flag("does the AI breathe?") is None


def test_confused_about_a_thing_is_puzzlement_not_the_symptom():
    assert find_red_flag("my husband is confused by the pdf") is None
    assert find_red_flag("my husband is confused and sleepy") is not None


@pytest.mark.parametrize("message, emergency", [
    ("my 10 year old has a temperature of 38", False),
    ("my 10 year old has a temperature of 39.2", True),
    ("my son has a fever", True),  # no number: the child's fever counts
    ("my 8 month old has a fever", True),  # a child named only by age
    ("baby 6 weeks old temp 38.2", True),
    ("my husband has a temperature of 39", False),
    ("my husband has a temperature of 104F", True),
])
def test_a_temperature_is_judged_for_whom_it_is_about(message, emergency):
    assert (find_red_flag(message) is not None) is emergency


@pytest.mark.parametrize("message, emergency", [
    ("my child had a fever last week, is the report ready?", False),
    ("I had a seizure years ago, now my chest hurts", True),
    ("had chest pain last month and it's back", True),
    ("I've been coughing blood since last month", True),
    ("I fainted this morning, is my report ready", True),
])
def test_only_a_symptom_weeks_or_more_in_the_past_is_let_go(message, emergency):
    assert (find_red_flag(message) is not None) is emergency
