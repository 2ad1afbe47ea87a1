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
