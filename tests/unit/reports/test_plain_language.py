"""Findings in plain words: every class the model knows has its own explanation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csss_fhir.reports import plain_language

MODEL_CLASSES = json.loads(
    (Path(__file__).parents[3] / "ml" / "demo_model" / "model.json").read_text())["classes"]


@pytest.mark.parametrize("finding", [*MODEL_CLASSES, "Not assessable", "Uncertain",
                                     "Lung_Opacity", "covid-19"])
def test_every_class_has_its_own_plain_explanation(finding):
    explanation = plain_language.explain(finding)
    assert plain_language.key(finding) in plain_language.FINDINGS or \
        finding.lower() == "covid-19"
    assert "_" not in explanation.name and explanation.meaning and explanation.next_steps


def test_a_doctors_own_words_are_kept_and_sent_to_the_doctor():
    explanation = plain_language.explain("Small left pleural effusion")
    assert explanation.name == "Small left pleural effusion"
    assert "Your doctor can explain" in explanation.meaning


def test_class_codes_become_words():
    assert plain_language.words("Bacterial_Pneumonia") == "Bacterial pneumonia"
