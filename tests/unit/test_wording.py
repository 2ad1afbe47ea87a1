"""Internal codes become words for people (issue 11 item 9)."""

from __future__ import annotations

import pytest

from csss_fhir.wording import readable
from csss_fhir.workflow.states import ScanState, Step


@pytest.mark.parametrize(("code", "words"), [
    ("Bacterial_Pneumonia", "Bacterial pneumonia"),
    ("Viral_Pneumonia", "Viral pneumonia"),
    ("Lung_Opacity", "Lung opacity"),
    ("COVID", "COVID-19"),
    ("Normal", "Normal"),
    ("Uncertain", "Uncertain"),
    ("Not_Assessable", "Not assessable"),
    ("PENDING_AI", "Waiting for AI"),
    ("RETURNED", "Returned for a new image"),
    ("send-back", "Sent back to the doctor"),
    ("110114", "Sign-in"),
    ("R", "Read"),
    ("urgent", "Urgent"),
    ("Right lower lobe ARDS", "Right lower lobe ARDS"),
    (None, "–"),
])
def test_codes_read_as_words(code, words):
    assert readable(code) == words


@pytest.mark.parametrize("code", [*ScanState, *Step])
def test_every_state_and_step_has_words_of_its_own(code):
    words = readable(code.value)
    assert "_" not in words and words != code.value


@pytest.mark.parametrize(("typed", "code"), [
    ("Bacterial pneumonia", "Bacterial_Pneumonia"),
    ("  bacterial PNEUMONIA ", "Bacterial_Pneumonia"),
    ("Bacterial_Pneumonia", "Bacterial_Pneumonia"),
    ("COVID-19", "COVID"),
    ("Right lower lobe consolidation", "Right lower lobe consolidation"),
    ("", ""),
    (None, None),
])
def test_words_a_form_offers_map_back_to_their_code(typed, code):
    from csss_fhir.wording import code_for

    assert code_for(typed, ["Normal", "Bacterial_Pneumonia", "COVID"]) == code
