"""The one rule on a doctor's finding, as $verify and $amend apply it."""

from __future__ import annotations

import pytest

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import AiPrediction
from csss_fhir.workflow.errors import FindingRequiredError
from csss_fhir.workflow.findings import MAX_LENGTH, check_verification, clean_finding


@pytest.mark.parametrize("given, cleaned", [(None, None), ("", None), ("  ", None),
                                            (" Normal ", "Normal")])
def test_a_finding_is_stripped_and_blank_means_none(given, cleaned):
    assert clean_finding(given) == cleaned


@pytest.mark.parametrize("finding", ["Uncertain", " uncertain ", "UNCERTAIN"])
def test_uncertain_is_never_a_finding(finding):
    with pytest.raises(FindingRequiredError, match="not a finding"):
        clean_finding(finding)


def test_a_finding_has_at_most_100_characters():
    assert clean_finding("x" * MAX_LENGTH) == "x" * MAX_LENGTH
    with pytest.raises(InvalidInputError, match="101 characters long; it must be at most 100"):
        clean_finding("x" * (MAX_LENGTH + 1))


def prediction(label: str) -> AiPrediction:
    return AiPrediction(label=label, uncertain=label == "Uncertain")


@pytest.mark.parametrize("label, agree", [("Uncertain", True), ("Uncertain", False),
                                          ("Normal", False)])
def test_a_finding_is_required_when_the_ai_is_uncertain_or_the_doctor_disagrees(label, agree):
    with pytest.raises(FindingRequiredError):
        check_verification(prediction(label), agree=agree, finding=None)


def test_agreeing_needs_no_finding_but_must_not_name_another():
    check_verification(prediction("Normal"), agree=True, finding=None)
    check_verification(prediction("Normal"), agree=True, finding="Normal")
    check_verification(prediction("Uncertain"), agree=True, finding="Normal")
    with pytest.raises(InvalidInputError, match="set agree to false"):
        check_verification(prediction("Normal"), agree=True, finding="COVID")


def test_nobody_agrees_with_not_assessable():
    not_assessable = AiPrediction(label="Not assessable", uncertain=True, assessable=False,
                                  reason="not a radiograph")
    for agree, finding in ((True, None), (True, "Normal"), (False, None)):
        with pytest.raises(FindingRequiredError, match="not a radiograph"):
            check_verification(not_assessable, agree=agree, finding=finding)
    check_verification(not_assessable, agree=False, finding="Normal")
